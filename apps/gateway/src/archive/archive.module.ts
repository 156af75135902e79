import { Module } from '@nestjs/common';
import { BoardsModule } from '../boards/boards.module';
import { ArchiveController } from './archive.controller';
import { ArchiveService } from './archive.service';

/** `POST /boards/:id/archive` and `GET /boards/:id/archive`. Needs the global `LockModule` and `CacheModule`. */
@Module({
  imports: [BoardsModule],
  controllers: [ArchiveController],
  providers: [ArchiveService],
})
export class ArchiveModule {}
