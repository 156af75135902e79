// Node flags the gateway runs with, in one place: `npm start` (scripts/start.js), the bench's gateway and its
// peers (bench/gateway/), and — as literal text, checked by test/compose.spec.ts — `npm run start:prod` and the
// Dockerfile's CMD.
//
// --max-semi-space-size=32: a young generation of up to 2 × 32 MB instead of V8's default 2 × 16 MB. Under load a
// request's garbage is young; with the default size, some gateway processes (1 in 5 to 4 in 5 bench runs,
// decided per process) spent ~5 ms per scavenge instead of ~0.7, copying and promoting short-lived objects, and
// served ~45 % fewer requests per CPU second. With 32 MB all runs were the fast kind (docs/performance.md,
// "gateway"). The price: up to ~32 MB more resident memory at peak.
'use strict';

const GATEWAY_NODE_FLAGS = ['--max-semi-space-size=32'];

module.exports = { GATEWAY_NODE_FLAGS };
