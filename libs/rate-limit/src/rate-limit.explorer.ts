import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { LimitResolver, type RouteLimits } from './limit-resolver';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA } from './rate-limit.decorator';

type Handler = (...args: unknown[]) => unknown;
type Controller = new (...args: unknown[]) => unknown;

/**
 * Reads the route metadata of `@RateLimit()` / `@SkipRateLimit()` (method over class, `limitAllRoutes`) and
 * keeps each route's resolved limits, for `RateLimitGuard`. At start-up it resolves every controller route,
 * so a bad `@RateLimit()` (an unknown policy, a fixed window that is not whole seconds once the module
 * defaults apply, `cost` above `points`) stops the app with a message naming `Controller.method` instead of
 * failing its first request — and the guard starts warm.
 */
@Injectable()
export class RateLimitExplorer implements OnModuleInit {
  private readonly routes = new WeakMap<object, WeakMap<object, RouteLimits | null>>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly resolver: LimitResolver,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getControllers()) {
      const cls = wrapper.metatype as Controller | null;
      if (!cls || typeof cls !== 'function') continue;
      const proto = cls.prototype as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const handler = proto[name];
        if (typeof handler === 'function') this.routeLimits(handler, cls);
      }
    }
  }

  /**
   * The limits of a route, resolved once per handler; `null` when the route is not limited.
   * @throws RateLimitConfigError naming `@RateLimit(Controller.method)`
   */
  routeLimits(handler: object, cls: object): RouteLimits | null {
    let perClass = this.routes.get(handler);
    if (!perClass) {
      perClass = new WeakMap();
      this.routes.set(handler, perClass);
    }
    let route = perClass.get(cls);
    if (route === undefined) {
      route = this.read(handler as Handler, cls as Controller);
      perClass.set(cls, route);
    }
    return route;
  }

  private read(handler: Handler, cls: Controller): RouteLimits | null {
    const handlerSkip = this.reflector.get(SKIP_RATE_LIMIT_METADATA, handler);
    if (handlerSkip === true) return null;
    let list = this.reflector.get(RATE_LIMIT_METADATA, handler);
    if (!list) {
      if (handlerSkip !== false && this.reflector.get(SKIP_RATE_LIMIT_METADATA, cls) === true) return null;
      list = this.reflector.get(RATE_LIMIT_METADATA, cls);
    }
    if (!list) {
      if (!this.resolver.config.limitAllRoutes) return null;
      list = [];
    }
    return this.resolver.route(list, `${cls.name}.${handler.name}`);
  }
}
