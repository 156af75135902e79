/** Node flags the gateway runs with (see gateway-node-flags.js). */
export declare const GATEWAY_NODE_FLAGS: readonly string[];
