import { Controller, Get, Header } from '@nestjs/common';
import { HousekeepingService } from './housekeeping.service';

/** `GET /leader`: this instance's role in the housekeeping election and the last leader run. */
@Controller('leader')
export class LeaderController {
  constructor(private readonly housekeeping: HousekeepingService) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  status(): ReturnType<HousekeepingService['status']> {
    return this.housekeeping.status();
  }
}
