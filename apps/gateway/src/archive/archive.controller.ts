import { Controller, Get, HttpCode, NotFoundException, Param, Post, UseFilters } from '@nestjs/common';
import { BoardIdPipe } from '../boards/board.pipes';
import { ArchiveService, type ArchiveRecord, type ArchiveResult } from './archive.service';
import { LockErrorsFilter } from './lock-errors.filter';

/** Archiving a board: locked work with a fenced write (see ArchiveService). */
@Controller('boards')
@UseFilters(LockErrorsFilter)
export class ArchiveController {
  constructor(private readonly archives: ArchiveService) {}

  /**
   * Archives the board: 200 `{ fence }`; 409 + `Retry-After` while another request (on any instance) archives
   * it; 503 + `Retry-After` when Redis is down.
   */
  @Post(':id/archive')
  @HttpCode(200)
  archive(@Param('id', BoardIdPipe) id: number): Promise<ArchiveResult> {
    return this.archives.archive(id);
  }

  /** The board's archive record with the fencing token that wrote it; 404 if it was never archived. */
  @Get(':id/archive')
  async record(@Param('id', BoardIdPipe) id: number): Promise<ArchiveRecord & { fence: number }> {
    const record = await this.archives.record(id);
    if (!record) throw new NotFoundException(`Board ${id} has not been archived`);
    return record;
  }
}
