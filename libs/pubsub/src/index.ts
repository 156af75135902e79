export { PubSubModule } from './pubsub.module';
export { PubSubService } from './pubsub.service';
export { PubSubConfigError, PubSubChannelError } from './pubsub.errors';
export { resolvePubSubConfig, PUBSUB_ENV_VARS, type ResolvedPubSubConfig } from './pubsub.config';
export { appendEventScript } from './scripts/append-event.script';
export { readEventsScript, type ReadEventsReply } from './scripts/read-events.script';
export type {
  PubSubModuleOptions,
  PubSubMessage,
  ResumableEvent,
  ResumableDelivery,
  ResyncReason,
  PubSubSubscription,
  PublishReceipt,
  PubSubState,
  PubSubStats,
} from './pubsub.interfaces';
