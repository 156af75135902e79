/**
 * Real-Redis test harness: starts, kills, pauses and reconfigures its own redis-server
 * processes on free 127.0.0.1 ports (never the shared instance on 6379), plus a TCP fault
 * proxy. Call stopAll() in afterAll(); a process-exit hook and a watchdog process SIGKILL any
 * child that is still running if the test process dies.
 *
 * The one test kit of the repo: `sleep`, `waitFor` (poll a probe), `fastRedisOptions()` (short timeouts,
 * no env) and `CapturingLogger` live here; lib tests import them from here instead of keeping copies.
 *
 * @example
 *   const redis = await RedisServer.start({ appendonly: true });
 *   const proxy = await FaultProxy.start(redis);
 *   const client = new Redis({ host: '127.0.0.1', port: proxy.port });
 *   proxy.setMode('blackhole');
 *   afterAll(() => stopAll());
 */
export { type CapturedLine, CapturingLogger } from './capturing-logger';
export { FaultProxy, type ProxyMode } from './fault-proxy';
export { fastRedisOptions } from './fast-redis';
export { freePort, HOST } from './ports';
export { isProcessAlive, startedPids, stopAll } from './process-registry';
export { RedisCluster, type RedisClusterOptions } from './redis-cluster';
export { RedisSentinel, type RedisSentinelOptions } from './redis-sentinel';
export { PortInUseError, RedisServer, type RedisServerOptions, type RedisServerTls } from './redis-server';
export { RespError, type RespValue } from './resp';
export { type TlsMaterial, tlsMaterial } from './tls-material';
export { settlesWithin, sleep, waitFor, withTimeout } from './wait';
