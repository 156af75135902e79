import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RedisClientModuleOptions } from './redis.interfaces';

export const {
  ConfigurableModuleClass: ConfigurableRedisModule,
  MODULE_OPTIONS_TOKEN: REDIS_MODULE_OPTIONS,
  OPTIONS_TYPE: REDIS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: REDIS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisClientModuleOptions>({ moduleName: 'RedisClient' })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
