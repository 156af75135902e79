// @WithLock declarations are checked when the app starts (LockMethodExplorer, onModuleInit), like the other
// decorators: a placeholder beyond the method's parameters, a malformed template, invalid options, a
// controller route or a request-scoped provider each fail start-up with a LockConfigError naming the method.
import { Controller, Injectable, Post, Scope, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { LockConfigError, LockModule, WithLock } from '@redwing/lock';
import { RedisClientModule } from '@redwing/redis';
import { fastRedisOptions, RedisServer, stopAll } from '../../../test/harness';

let server: RedisServer;

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(() => stopAll());

@Injectable()
class PastLastParameter {
  @WithLock('order:{1}')
  async ship(orderId: string): Promise<string> {
    return orderId;
  }
}

@Injectable()
class MalformedTemplate {
  @WithLock('order:{id}')
  async ship(orderId: string): Promise<string> {
    return orderId;
  }
}

@Injectable()
class InvalidOptions {
  @WithLock('order:{0}', { ttl: 10 })
  async ship(orderId: string): Promise<string> {
    return orderId;
  }
}

@Controller('orders')
class LockedRoute {
  @Post()
  @WithLock('order:{0}')
  async ship(orderId: string): Promise<string> {
    return orderId;
  }
}

@Injectable({ scope: Scope.REQUEST })
class RequestScoped {
  @WithLock('order:{0}')
  async ship(orderId: string): Promise<string> {
    return orderId;
  }
}

@Injectable()
class Valid {
  @WithLock('order:{0}:line:{1.id}', { ttl: 1_000, wait: 0 })
  async ship(orderId: string, line: { id: string }): Promise<string> {
    return `${orderId}/${line.id}`;
  }
}

/** Starts an app with `type` as a provider (or controller); resolves with the start-up error, if any. */
async function startWith(type: Type<unknown>, as: 'provider' | 'controller' = 'provider'): Promise<unknown> {
  const module = await Test.createTestingModule({
    imports: [
      RedisClientModule.forRoot({ ...fastRedisOptions(), url: server.url() }),
      LockModule.forRoot({ useEnv: false }),
    ],
    providers: as === 'provider' ? [type] : [],
    controllers: as === 'controller' ? [type] : [],
  }).compile();
  try {
    await module.init();
    return undefined;
  } catch (err) {
    return err;
  } finally {
    await module.close();
  }
}

describe('@WithLock is validated at start-up', () => {
  it.each<[string, Type<unknown>, 'provider' | 'controller', RegExp]>([
    ['a placeholder past the last parameter', PastLastParameter, 'provider', /uses \{1\}.*1 parameter/],
    ['a malformed placeholder', MalformedTemplate, 'provider', /invalid placeholder \{id\}/],
    ['an option out of range', InvalidOptions, 'provider', /invalid @WithLock options.*ttl/],
    ['a controller route', LockedRoute, 'controller', /on a controller route/],
    ['a request-scoped provider', RequestScoped, 'provider', /request- or transient-scoped/],
  ])('refuses %s, naming the method', async (_, type, as, message) => {
    const err = await startWith(type, as);
    expect(err).toBeInstanceOf(LockConfigError);
    expect((err as LockConfigError).field).toBe(`${type.name}.ship`);
    expect((err as Error).message).toMatch(message);
  });

  it('starts with a valid declaration', async () => {
    expect(await startWith(Valid)).toBeUndefined();
  });
});
