/** `PubSubModule` options are invalid; `field` names the option (or environment variable). Thrown at start-up. */
export class PubSubConfigError extends Error {
  override readonly name = 'PubSubConfigError';

  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`Invalid PubSubModule option "${field}": ${message}`);
  }
}

/**
 * A channel name, pattern or payload cannot be used: the name has characters outside `A-Z a-z 0-9 _ . : -`,
 * a pattern was given where only channels work (resumable tier, sharded pub/sub on Cluster), or the payload
 * is larger than `maxPayloadSize`. Nothing was published or subscribed.
 */
export class PubSubChannelError extends Error {
  override readonly name = 'PubSubChannelError';

  constructor(
    readonly channel: string,
    reason: string,
  ) {
    super(`Pub/sub channel "${channel.slice(0, 80)}": ${reason}`);
  }
}
