import { Injectable, Logger, Optional, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { ServerResponse } from 'node:http';
import { RedisClientManager } from './redis-client.manager';
import { enterBudgetScope } from './request-budget';
import { chainRequestHook } from './request-hook';

/**
 * Enters a Redis budget scope (request-budget.ts) for every HTTP request, from the adapter's request hook
 * (`setOnRequestHook`, Express and Fastify), so middleware, guards, interceptors, body parsing and the
 * handler all run in it. The scope closes when the response closes. Chains to a hook installed before it
 * (the metrics lib installs one the same way). Off with `requestBudget: false`.
 * @internal provided by RedisClientModule
 */
@Injectable()
export class RequestBudgetInstaller implements OnModuleInit {
  private readonly logger = new Logger('RedisRequestBudget');

  constructor(
    private readonly manager: RedisClientManager,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    if (!this.manager.requestBudget) return;
    chainRequestHook(
      this.adapterHost?.httpAdapter,
      (_request, reply, next) => {
        let res: ServerResponse | undefined;
        try {
          res = ((reply as { raw?: ServerResponse }).raw ?? reply) as ServerResponse;
          if (typeof res?.once !== 'function') res = undefined;
        } catch (err) {
          this.logger.warn(`request hook failed: ${(err as Error).message}`);
        }
        if (!res) return next();
        let result: unknown;
        const scope = enterBudgetScope(() => {
          result = next();
        });
        res.once('close', () => {
          scope.closed = true;
        });
        return result;
      },
      'first',
    );
  }
}
