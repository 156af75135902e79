import { Module } from '@nestjs/common';
import { LiveGateway } from './live.gateway';

/**
 * The live endpoint: socket.io namespace `/live` (see LiveGateway). Needs `PubSubService` (global, from
 * the live feature); uses `RateLimitService` and `SessionService` when the app has them.
 */
@Module({
  providers: [LiveGateway],
  exports: [LiveGateway],
})
export class LiveModule {}
