import { Module } from '@nestjs/common';
import { BoardsController } from './boards.controller';
import { BoardsService } from './boards.service';

/** `GET /boards`, `GET /boards/:id`, `POST /boards/:id/cards` over a simulated slow upstream. */
@Module({
  controllers: [BoardsController],
  providers: [BoardsService],
  exports: [BoardsService],
})
export class BoardsModule {}
