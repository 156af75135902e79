import { Module } from '@nestjs/common';
import { HousekeepingService } from './housekeeping.service';
import { LeaderController } from './leader.controller';

/** The leader-only housekeeping task and `GET /leader`. Needs the global `LockModule`. */
@Module({
  controllers: [LeaderController],
  providers: [HousekeepingService],
})
export class LeaderModule {}
