import { Injectable, Logger, Optional } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { CacheService } from '@redwing/cache';
import { LockLostError, LockService, type FencedValue } from '@redwing/lock';
import { PubSubService } from '@redwing/pubsub';
import { BoardsService } from '../boards/boards.service';

/** What `POST /boards/:id/archive` answers. */
export interface ArchiveResult {
  /** Fencing token of the lock the archive was written under. */
  fence: number;
}

/** The stored archive record of a board. */
export interface ArchiveRecord {
  boardId: number;
  archivedAt: string;
  cards: number;
}

/**
 * Archives a board under its lock: snapshot it from the (slow) upstream, write the archive record fenced
 * with the lock's token (a stale holder's write is refused by the resource), evict the board's cache tag,
 * and publish `board.archived` on `board:<id>`. Concurrent archives of one board, on any instance, get 409.
 */
@Injectable()
export class ArchiveService {
  private readonly logger = new Logger('ArchiveService');
  private readonly ttl: number;
  private readonly wait: number;

  constructor(
    private readonly locks: LockService,
    private readonly boards: BoardsService,
    private readonly cache: CacheService,
    config: ConfigService,
    @Optional() private readonly pubsub?: PubSubService,
  ) {
    this.ttl = Number(config.get<string>('ARCHIVE_LOCK_TTL') ?? 10_000);
    this.wait = Number(config.get<string>('ARCHIVE_LOCK_WAIT') ?? 0);
  }

  /**
   * @throws LockBusyError while another request archives the same board (→ 409)
   * @throws LockUnavailableError when Redis is down (→ 503); LockLostError if the lease was lost mid-work
   */
  archive(boardId: number): Promise<ArchiveResult> {
    return this.locks.using(
      `board:${boardId}`,
      async (signal, lock) => {
        const board = await this.boards.board(boardId);
        signal.throwIfAborted();
        const record: ArchiveRecord = {
          boardId,
          archivedAt: new Date().toISOString(),
          cards: board.cards.length,
        };
        const write = await this.locks.writeFenced(this.recordName(boardId), lock, JSON.stringify(record));
        if (!write.accepted) throw new LockLostError(lock.resource, lock.fence, 'taken');
        await this.cache.invalidateTags([`board:${boardId}`]);
        await this.publish(boardId, lock.fence);
        return { fence: lock.fence };
      },
      { ttl: this.ttl, wait: this.wait },
    );
  }

  /** The archive record of a board and the token that wrote it, or null. */
  async record(boardId: number): Promise<(ArchiveRecord & { fence: number }) | null> {
    const stored: FencedValue | null = await this.locks.readFenced(this.recordName(boardId));
    return stored ? { ...(JSON.parse(stored.value) as ArchiveRecord), fence: stored.fence } : null;
  }

  private recordName(boardId: number): string {
    return `board:${boardId}:archive`;
  }

  private async publish(boardId: number, fence: number): Promise<void> {
    try {
      await this.pubsub?.publishEvent(`board:${boardId}`, {
        type: 'board.archived',
        data: { boardId, fence },
      });
    } catch (err) {
      this.logger.warn(`board.archived for board ${boardId} was not published: ${(err as Error)?.name}`);
    }
  }
}
