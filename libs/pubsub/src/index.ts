export { PubSubModule } from './pubsub.module';
export { PubSubService } from './pubsub.service';
export { PubSubConfigError, PubSubChannelError } from './pubsub.errors';
export { PUBSUB_ENV_VARS } from './pubsub.config';
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
