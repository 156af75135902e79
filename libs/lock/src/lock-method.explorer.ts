import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { callOptions } from './lock.config';
import { LockConfigError } from './lock.errors';
import type { WithLockOptions } from './lock.interfaces';
import { LockService } from './lock.service';
import { compileTemplate } from './resource-template';
import { WITH_LOCK_METADATA } from './with-lock.decorator';

type AnyFn = (...args: unknown[]) => unknown;
const WRAPPED = Symbol('redwing.lock.wrapped');

/**
 * Makes `@WithLock()` work: at start-up it checks every declaration (template syntax, placeholders within
 * the method's parameters, ttl/wait ranges) and wraps the decorated methods of singleton providers so they
 * run inside `LockService.using()`. A declaration on a controller route, or on a request-scoped provider, is
 * refused at start-up with what to do instead.
 */
@Injectable()
export class LockMethodExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly locks: LockService,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getControllers()) {
      const proto = wrapper.metatype?.prototype as Record<string, AnyFn> | undefined;
      if (!proto) continue;
      for (const name of this.scanner.getAllMethodNames(proto)) {
        if (this.reflector.get(WITH_LOCK_METADATA, proto[name])) {
          throw new LockConfigError(
            `${wrapper.name}.${name}`,
            'uses @WithLock on a controller route; put it on a provider method and call that from the route',
          );
        }
      }
    }
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string | symbol, unknown> | undefined;
      if (!instance || typeof instance !== 'object' || !wrapper.metatype) continue;
      const proto = Object.getPrototypeOf(instance) as object;
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const original = instance[name];
        if (typeof original !== 'function' || (original as { [WRAPPED]?: boolean })[WRAPPED]) continue;
        const options = this.reflector.get(WITH_LOCK_METADATA, original as AnyFn);
        if (!options) continue;
        const field = `${wrapper.name}.${name}`;
        if (!wrapper.isDependencyTreeStatic()) {
          throw new LockConfigError(
            field,
            'uses @WithLock in a request- or transient-scoped provider; use LockService.using() there',
          );
        }
        instance[name] = this.wrap(field, original as AnyFn, options);
      }
    }
  }

  private wrap(field: string, original: AnyFn, options: WithLockOptions): AnyFn {
    const { resource, ...using } = options;
    const template = compileTemplate(resource, field);
    if (template.maxArg >= original.length) {
      throw new LockConfigError(
        field,
        `uses {${template.maxArg}} in "${resource}" but the method declares ${original.length} parameter(s)`,
      );
    }
    try {
      callOptions(using, this.locks.config);
    } catch (err) {
      throw new LockConfigError(field, `has invalid @WithLock options: ${(err as Error).message}`);
    }
    const locks = this.locks;
    const wrapped = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      return locks.using(template.render(args), () => Promise.resolve(original.apply(this, args)), using);
    };
    for (const key of Reflect.getMetadataKeys(original)) {
      Reflect.defineMetadata(key, Reflect.getMetadata(key, original), wrapped);
    }
    Object.defineProperty(wrapped, 'name', { value: original.name });
    (wrapped as unknown as { [WRAPPED]: boolean })[WRAPPED] = true;
    return wrapped;
  }
}
