// Preloaded (`--require`) into the bench gateway when it runs with `--cpu-prof`: Node writes the profile only
// when the process exits on its own, but the gateway's shutdown hooks (Nest's enableShutdownHooks) re-raise
// SIGTERM after closing the app, which kills the process before the profile is written. This listener stays
// registered after Nest removes its own, so the re-raised signal ends in process.exit() instead.
let received = 0;
process.on('SIGTERM', () => {
  received++;
  if (received > 1) process.exit(0);
  // Nest closes the app and re-raises; exit anyway if that takes too long.
  setTimeout(() => process.exit(0), 15_000).unref();
});
export {};
