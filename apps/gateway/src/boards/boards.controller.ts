import { Body, Controller, Get, Logger, Optional, Param, Post, Query, UseGuards } from '@nestjs/common';
import { CacheEvict, Cacheable } from '@redwing/cache';
import { PubSubService } from '@redwing/pubsub';
import { boardsRateLimit } from '../features/rate-limit.feature';
import { JsonBodyGuard } from '../http/json-body.guard';
import { singleQuery } from '../http/query-params';
import { BoardIdPipe, CreateCardPipe, pageOf, type CreateCardBody } from './board.pipes';
import { BoardsService, type Board, type BoardSummary, type Card } from './boards.service';

/** The route's tag for one board: `board:<id>` (ids are canonical, see BoardIdPipe). */
const boardTags = (req: { params: { id: string } }) => [`board:${req.params.id}`];

/**
 * Kanban boards in front of a slow upstream. `GET /boards/:id` is cached per board (tag `board:<id>`);
 * adding a card evicts that board and the list (`boards`), on every gateway instance.
 */
@Controller('boards')
export class BoardsController {
  private readonly logger = new Logger('BoardsController');

  constructor(
    private readonly boards: BoardsService,
    @Optional() private readonly pubsub?: PubSubService,
  ) {}

  /**
   * Board summaries, `?offset=0&limit=50`. Cached in the service (`BoardsService.list`); limited per client
   * to `RATE_LIMIT_BOARDS` requests a minute.
   */
  @Get()
  @boardsRateLimit()
  list(
    @Query('offset') offset?: unknown,
    @Query('limit') limit?: unknown,
  ): Promise<{ boards: BoardSummary[]; total: number; offset: number; limit: number }> {
    const page = pageOf(singleQuery('offset', offset), singleQuery('limit', limit));
    return this.boards.list(page.offset, page.limit);
  }

  /**
   * One board; the upstream takes `UPSTREAM_DELAY_MS`, the cache answers in well under a millisecond. The
   * route reads no query parameter, so none is part of the key (`?cb=<n>` cannot bust the cache).
   */
  @Get(':id')
  @Cacheable({ profile: 'kanban', tags: boardTags, query: [] })
  get(@Param('id', BoardIdPipe) id: number): Promise<Board> {
    return this.boards.board(id);
  }

  /**
   * Adds a card: `{ "title": string }` (1–200 characters); evicts the board and the list everywhere, and
   * publishes `card.created` on `board:<id>` (resumable: live sockets on every instance get it).
   */
  @Post(':id/cards')
  // JSON only: any other Content-Type is 415 (a form post would skip the CORS preflight).
  @UseGuards(JsonBodyGuard)
  @CacheEvict({ tags: (req: { params: { id: string } }) => [...boardTags(req), 'boards'] })
  async addCard(
    @Param('id', BoardIdPipe) id: number,
    @Body(CreateCardPipe) body: CreateCardBody,
  ): Promise<{ boardId: number; card: Card }> {
    const card = await this.boards.addCard(id, body.title);
    await this.publishCardCreated(id, card);
    return { boardId: id, card };
  }

  /** Never fails the request: while Redis is down the event waits in the pub/sub offline buffer. */
  private async publishCardCreated(boardId: number, card: Card): Promise<void> {
    try {
      await this.pubsub?.publishEvent(`board:${boardId}`, { type: 'card.created', data: { boardId, card } });
    } catch (err) {
      this.logger.warn(`card.created for board ${boardId} was not published: ${(err as Error)?.name}`);
    }
  }
}
