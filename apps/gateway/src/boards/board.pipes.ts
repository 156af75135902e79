import { BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';

/** Longest card title accepted, in characters. */
export const MAX_TITLE_LENGTH = 200;

/**
 * Parses `:id`. Only canonical positive integers are accepted (`7`, not `07` or `7.0`), so every board has
 * exactly one URL and one cache tag.
 */
@Injectable()
export class BoardIdPipe implements PipeTransform<string, number> {
  transform(value: string): number {
    if (typeof value !== 'string' || !/^[1-9][0-9]{0,8}$/.test(value)) {
      throw new BadRequestException(
        'Board id must be a positive integer without leading zeros, e.g. /boards/42',
      );
    }
    return Number(value);
  }
}

/** Body of `POST /boards/:id/cards`. */
export interface CreateCardBody {
  title: string;
}

/** Validates `{ "title": string }`: 1–200 characters after trimming, no other fields. */
@Injectable()
export class CreateCardPipe implements PipeTransform<unknown, CreateCardBody> {
  transform(body: unknown): CreateCardBody {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BadRequestException('Body must be a JSON object: { "title": string }');
    }
    const extra = Object.keys(body).filter((k) => k !== 'title');
    if (extra.length > 0) {
      throw new BadRequestException(
        `Unknown field(s) ${extra.map((k) => JSON.stringify(k)).join(', ')}; only "title" is accepted`,
      );
    }
    const { title } = body as { title?: unknown };
    if (typeof title !== 'string') throw new BadRequestException('"title" must be a string');
    const trimmed = title.trim();
    if (trimmed.length === 0 || trimmed.length > MAX_TITLE_LENGTH) {
      throw new BadRequestException(`"title" must have 1 to ${MAX_TITLE_LENGTH} characters (after trimming)`);
    }
    return { title: trimmed };
  }
}

/** Parses `?offset=&limit=` of the list: offset ≥ 0, 1 ≤ limit ≤ 200 (default 50). */
export function pageOf(offset: unknown, limit: unknown): { offset: number; limit: number } {
  const o = offset === undefined ? 0 : Number(offset);
  const l = limit === undefined ? 50 : Number(limit);
  if (!Number.isInteger(o) || o < 0 || o > 1_000_000)
    throw new BadRequestException('offset must be an integer ≥ 0');
  if (!Number.isInteger(l) || l < 1 || l > 200)
    throw new BadRequestException('limit must be an integer from 1 to 200');
  return { offset: o, limit: l };
}
