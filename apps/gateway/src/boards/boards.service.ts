import { Injectable, NotFoundException } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Cacheable } from '@redwing/cache';

/** A card on a board. */
export interface Card {
  id: number;
  title: string;
  column: string;
  createdAt: string;
}

/** A Kanban board as the upstream returns it. */
export interface Board {
  id: number;
  name: string;
  columns: string[];
  cards: Card[];
  /** Increments with every change. */
  version: number;
  /** When the upstream produced this copy (shows whether a response came from the cache). */
  fetchedAt: string;
}

/** One line of `GET /boards`. */
export interface BoardSummary {
  id: number;
  name: string;
  cards: number;
  version: number;
}

/** Boards the simulated upstream holds (ids 1..BOARD_COUNT). */
export const BOARD_COUNT = 1_000;
/** Cards kept per board; the oldest go first, so memory stays bounded however many are added. */
export const MAX_CARDS = 200;
const COLUMNS = ['todo', 'doing', 'done'];

interface StoredBoard {
  name: string;
  cards: Card[];
  version: number;
  nextCardId: number;
}

/**
 * The simulated upstream's data. It lives at module level, not in the service, because it stands for an
 * external system: every gateway instance in this process sees the same boards (as every instance would see
 * the same database). Instances in separate processes each simulate their own.
 */
const store = new Map<number, StoredBoard>();

function stored(id: number): StoredBoard | undefined {
  if (!Number.isInteger(id) || id < 1 || id > BOARD_COUNT) return undefined;
  let board = store.get(id);
  if (!board) {
    board = {
      name: `Board ${id}`,
      cards: COLUMNS.map((column, i) => ({
        id: i + 1,
        title: `Seed card ${i + 1} of board ${id}`,
        column,
        createdAt: new Date(0).toISOString(),
      })),
      version: 1,
      nextCardId: COLUMNS.length + 1,
    };
    store.set(id, board);
  }
  return board;
}

/**
 * A slow upstream (a Kanban service that takes `UPSTREAM_DELAY_MS`, default 200 ms, per call). The board
 * route caches it with `@Cacheable`; the list is cached here, on the service method, the other way the
 * decorators are used.
 */
@Injectable()
export class BoardsService {
  private readonly delay: number;
  /** Upstream calls made, by kind (tests and the kanban benchmark read these). */
  readonly calls = { board: 0, list: 0, addCard: 0 };

  constructor(config: ConfigService) {
    this.delay = Number(config.get('UPSTREAM_DELAY_MS') ?? 200);
  }

  /** @throws NotFoundException for an unknown board */
  async board(id: number): Promise<Board> {
    this.calls.board++;
    await this.upstream();
    const b = stored(id);
    if (!b) throw new NotFoundException(`Board ${id} does not exist (ids are 1..${BOARD_COUNT})`);
    return {
      id,
      name: b.name,
      columns: COLUMNS,
      cards: b.cards.map((c) => ({ ...c })),
      version: b.version,
      fetchedAt: new Date().toISOString(),
    };
  }

  /** A page of board summaries; cached per page under the `boards` tag, which adding a card evicts. */
  @Cacheable({
    profile: 'kanban',
    key: (offset: number, limit: number) => `boards:list:${offset}:${limit}`,
    tags: ['boards'],
  })
  async list(
    offset: number,
    limit: number,
  ): Promise<{ boards: BoardSummary[]; total: number; offset: number; limit: number }> {
    this.calls.list++;
    await this.upstream();
    const boards: BoardSummary[] = [];
    for (let id = offset + 1; id <= Math.min(BOARD_COUNT, offset + limit); id++) {
      const b = stored(id)!;
      boards.push({ id, name: b.name, cards: b.cards.length, version: b.version });
    }
    return { boards, total: BOARD_COUNT, offset, limit };
  }

  /** @throws NotFoundException for an unknown board */
  async addCard(id: number, title: string): Promise<Card> {
    this.calls.addCard++;
    await this.upstream();
    const b = stored(id);
    if (!b) throw new NotFoundException(`Board ${id} does not exist (ids are 1..${BOARD_COUNT})`);
    const card: Card = { id: b.nextCardId++, title, column: 'todo', createdAt: new Date().toISOString() };
    b.cards.push(card);
    if (b.cards.length > MAX_CARDS) b.cards.splice(0, b.cards.length - MAX_CARDS);
    b.version++;
    return card;
  }

  private upstream(): Promise<void> {
    return this.delay > 0 ? new Promise((r) => setTimeout(r, this.delay)) : Promise.resolve();
  }
}
