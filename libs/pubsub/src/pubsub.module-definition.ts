import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { PubSubModuleOptions } from './pubsub.interfaces';

export const {
  ConfigurableModuleClass: ConfigurablePubSubModule,
  MODULE_OPTIONS_TOKEN: PUBSUB_MODULE_OPTIONS,
  OPTIONS_TYPE: PUBSUB_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: PUBSUB_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<PubSubModuleOptions>({ moduleName: 'PubSub' })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
