import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { RateLimitService } from './rate-limit.service';

/**
 * Resolves the limits of every controller route at start-up, so a bad `@RateLimit()` (an unknown policy, a
 * fixed window that is not whole seconds once the module defaults apply, `cost` above `points`) stops the app
 * with a message naming `Controller.method` instead of failing its first request — and the guard starts warm.
 */
@Injectable()
export class RateLimitExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly service: RateLimitService,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getControllers()) {
      const cls = wrapper.metatype as (new (...args: unknown[]) => unknown) | null;
      if (!cls || typeof cls !== 'function') continue;
      const proto = cls.prototype as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const handler = proto[name];
        if (typeof handler === 'function') this.service.routeLimits(handler, cls);
      }
    }
  }
}
