import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { argumentsKey } from './cache-keys';
import { ROUTE_KEY_PREFIX } from './http-cache';
import { CacheEvict, CachePut, Cacheable } from './cache.decorators';
import { resolveRouteKeyOptions } from './cache.config';
import { CacheConfigError } from './cache.errors';
import type { CacheArgsFn, CacheableOptions, CacheEvictOptions, CachePutOptions } from './cache.interfaces';
import { CacheService } from './cache.service';

type AnyFn = (...args: unknown[]) => unknown;

/** Marks a method this explorer already wrapped (two CacheModules must not wrap twice). */
const WRAPPED = Symbol('redwing.cache.wrapped');

/**
 * Makes `@Cacheable`, `@CacheEvict` and `@CachePut` work on provider methods: at start-up it finds the
 * decorated methods of every singleton provider and replaces them, on the instance, with a function that
 * goes through `CacheService`. Controllers are left to `CacheInterceptor`, but their metadata is checked
 * here so a misspelt profile fails at start-up, not on the first request.
 */
@Injectable()
export class CacheMethodExplorer implements OnModuleInit {
  private readonly logger = new Logger('CacheMethodExplorer');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly cache: CacheService,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getControllers()) {
      const proto = wrapper.metatype?.prototype as object | undefined;
      if (!proto) continue;
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const fn = (proto as Record<string, AnyFn>)[name];
        this.checkProfiles(wrapper.name, name, [fn, wrapper.metatype as AnyFn]);
        this.checkRouteKeys(wrapper.name, name, [fn, wrapper.metatype as AnyFn]);
      }
    }
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string | symbol, unknown> | undefined;
      if (!instance || typeof instance !== 'object' || !wrapper.metatype) continue;
      const proto = Object.getPrototypeOf(instance) as object;
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const original = instance[name];
        if (typeof original !== 'function' || (original as { [WRAPPED]?: boolean })[WRAPPED]) continue;
        const cacheable = this.reflector.get(Cacheable, original as AnyFn);
        const evict = this.reflector.get(CacheEvict, original as AnyFn);
        const put = this.reflector.get(CachePut, original as AnyFn);
        if (!cacheable && !evict && !put) continue;
        if (!wrapper.isDependencyTreeStatic()) {
          this.logger.warn(
            `${wrapper.name}.${name} has cache decorators but ${wrapper.name} is request- or transient-scoped; ` +
              `only singleton providers are wrapped. Call CacheService directly there.`,
          );
          continue;
        }
        this.checkProfiles(wrapper.name, name, [original as AnyFn]);
        const wrapped = this.wrap(
          { cls: wrapper.name, method: name, original: original as AnyFn },
          { cacheable, evict, put },
        );
        for (const key of Reflect.getMetadataKeys(original)) {
          Reflect.defineMetadata(key, Reflect.getMetadata(key, original), wrapped);
        }
        Object.defineProperty(wrapped, 'name', { value: (original as AnyFn).name });
        (wrapped as unknown as { [WRAPPED]: boolean })[WRAPPED] = true;
        instance[name] = wrapped;
      }
    }
  }

  private checkProfiles(cls: string, method: string, targets: AnyFn[]): void {
    for (const decorator of [Cacheable, CacheEvict, CachePut] as const) {
      const o = this.reflector.getAllAndOverride<{ profile?: string } | undefined>(decorator, targets);
      if (!o?.profile) continue;
      try {
        this.cache.assertProfile(o.profile);
      } catch (err) {
        const why =
          err instanceof CacheConfigError
            ? err.message.replace(/^Invalid cache configuration: profile /, '')
            : String(err);
        throw new CacheConfigError(`${cls}.${method}`, `uses profile ${why}`);
      }
    }
  }

  /** Invalid `query` / `vary` on a route fail at start-up, not on the first request. */
  private checkRouteKeys(cls: string, method: string, targets: AnyFn[]): void {
    const cacheable = this.reflector.getAllAndOverride(Cacheable, targets);
    const put = this.reflector.getAllAndOverride(CachePut, targets);
    if (cacheable) resolveRouteKeyOptions(`@Cacheable(${cls}.${method})`, cacheable);
    if (put) resolveRouteKeyOptions(`@CachePut(${cls}.${method})`, put);
  }

  private wrap(
    target: { cls: string; method: string; original: AnyFn },
    meta: { cacheable?: CacheableOptions; evict?: CacheEvictOptions; put?: CachePutOptions },
  ): AnyFn {
    const { cls, method, original } = target;
    const { cacheable, evict, put } = meta;
    const cache = this.cache;
    const logger = this.logger;
    let warned = false;
    /** The key, or undefined for one in the route family (`~http:`), which a method never reads or writes. */
    const keyOf = (custom: string | CacheArgsFn<string> | undefined, args: unknown[]) => {
      const key =
        custom === undefined
          ? `${cls}.${method}:${argumentsKey(args)}`
          : typeof custom === 'function'
            ? custom(...args)
            : custom;
      if (typeof key !== 'string' || !key.startsWith(ROUTE_KEY_PREFIX)) return key;
      if (!warned) {
        warned = true;
        logger.warn(
          `${cls}.${method}: its cache key starts with "${ROUTE_KEY_PREFIX}", which is reserved for route entries; ` +
            `the call is not cached. Prefix the key (e.g. \`user:\${id}\`).`,
        );
      }
      return undefined;
    };
    const tagsOf = (tags: CacheableOptions['tags'], args: unknown[]) =>
      tags === undefined ? undefined : [...(typeof tags === 'function' ? tags(...args) : tags)];
    const listOf = (v: CacheEvictOptions['keys'], args: unknown[]) =>
      v === undefined ? undefined : [...(typeof v === 'function' ? v(...args) : v)];

    return async function (this: unknown, ...args: unknown[]): Promise<unknown> {
      let result: unknown;
      const key =
        cacheable && (!cacheable.condition || cacheable.condition(...args))
          ? keyOf(cacheable.key, args)
          : undefined;
      if (cacheable && key !== undefined) {
        const unless = cacheable.unless;
        result = await cache.getOrSet(key, () => original.apply(this, args), {
          profile: cacheable.profile,
          ttl: cacheable.ttl,
          tags: tagsOf(cacheable.tags, args),
          staleWhileRevalidate: cacheable.staleWhileRevalidate,
          staleIfError: cacheable.staleIfError,
          lock: cacheable.lock,
          unless: unless ? (value: unknown) => unless(value, ...args) : undefined,
        });
      } else {
        result = await original.apply(this, args);
      }
      const putKey = put && !put.unless?.(result, ...args) ? keyOf(put.key, args) : undefined;
      if (put && putKey !== undefined) {
        await cache.set(putKey, result, {
          profile: put.profile,
          ttl: put.ttl,
          tags: tagsOf(put.tags, args),
          staleWhileRevalidate: put.staleWhileRevalidate,
          staleIfError: put.staleIfError,
        });
      }
      if (evict) {
        await cache.evict({
          keys: listOf(evict.keys, args),
          tags: listOf(evict.tags, args),
          allEntries: evict.allEntries,
          profile: evict.profile,
        });
      }
      return result;
    };
  }
}
