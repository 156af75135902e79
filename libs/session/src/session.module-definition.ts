import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { SessionModuleOptions } from './session.interfaces';

export const {
  ConfigurableModuleClass: ConfigurableSessionModule,
  MODULE_OPTIONS_TOKEN: SESSION_MODULE_OPTIONS,
  OPTIONS_TYPE: SESSION_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: SESSION_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SessionModuleOptions>({ moduleName: 'Session' })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
