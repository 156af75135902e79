/**
 * Local receivers for what the metrics lib sends out, shared by the lib's int-specs and the gateway's
 * e2e-specs: an OTLP/HTTP JSON trace receiver, a Sentry envelope receiver (a DSN pointing at it), and
 * `promtool check metrics`. Everything listens on 127.0.0.1 only.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gunzipSync, inflateSync } from 'node:zlib';
import { waitFor } from '../../../test/harness';

export { waitFor } from '../../../test/harness';

export const PROMTOOL = '/usr/bin/promtool';

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const encoding = req.headers['content-encoding'];
  if (encoding === 'gzip') return gunzipSync(body);
  if (encoding === 'deflate') return inflateSync(body);
  return body;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** One span as received over OTLP/JSON, flattened. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP span kind: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status: { code?: number; message?: string };
  events: Array<{ name: string; attributes: Record<string, string | number | boolean> }>;
  service: string;
  scope: string;
}

type OtlpValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
};
type OtlpAttribute = { key: string; value: OtlpValue };

function attrValue(v: OtlpValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return JSON.stringify(v.arrayValue?.values?.map(attrValue) ?? null);
}

function attrs(list: OtlpAttribute[] | undefined): Record<string, string | number | boolean> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, attrValue(a.value)]));
}

/** OTLP/JSON ids are hex; accept base64 too. */
function hexId(id: string | undefined): string {
  if (!id) return '';
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

/** Received spans and the questions the tests ask about them. */
export class SpanStore {
  readonly spans: ReceivedSpan[] = [];

  /** Spans of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.all().filter((s) => s.traceId === traceId);
  }

  /** Children of a span, in the order received. */
  children(span: ReceivedSpan): ReceivedSpan[] {
    return this.all().filter((s) => s.traceId === span.traceId && s.parentSpanId === span.spanId);
  }

  /** Waits until a span matching `predicate` arrived; throws with what did arrive otherwise. */
  async waitForSpan(predicate: (s: ReceivedSpan) => boolean, timeout = 5_000): Promise<ReceivedSpan> {
    const found = await waitFor('a matching span', timeout, () => this.all().find(predicate)).catch(
      () => undefined,
    );
    if (!found) {
      throw new Error(
        `no matching span within ${timeout} ms; received: ${
          this.all()
            .map((s) => s.name)
            .join(', ') || 'none'
        }`,
      );
    }
    return found;
  }

  /** Every span received so far. */
  all(): ReceivedSpan[] {
    return this.spans;
  }

  clear(): void {
    this.spans.length = 0;
  }
}

/** An OTLP/HTTP receiver accepting JSON (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) on `/v1/traces`. */
export class OtlpReceiver extends SpanStore {
  /** Requests to paths other than /v1/traces (e.g. metrics or logs exporters that should not exist). */
  readonly otherPaths: string[] = [];
  /** Content types seen on /v1/traces. */
  readonly contentTypes = new Set<string>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    super();
  }

  /** Base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<OtlpReceiver> {
    const server = createServer();
    const receiver = new OtlpReceiver(server, await listen(server));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const body = await readBody(req);
        if (req.url?.split('?')[0] !== '/v1/traces') {
          receiver.otherPaths.push(req.url ?? '');
        } else {
          receiver.contentTypes.add(String(req.headers['content-type']));
          receiver.ingest(JSON.parse(body.toString('utf8')));
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      })().catch(() => {
        res.writeHead(400);
        res.end();
      });
    });
    return receiver;
  }

  override clear(): void {
    super.clear();
    this.otherPaths.length = 0;
  }

  close(): Promise<void> {
    return close(this.server);
  }

  private ingest(payload: {
    resourceSpans?: Array<{
      resource?: { attributes?: OtlpAttribute[] };
      scopeSpans?: Array<{
        scope?: { name?: string };
        spans?: Array<{
          traceId?: string;
          spanId?: string;
          parentSpanId?: string;
          name: string;
          kind?: number;
          attributes?: OtlpAttribute[];
          status?: { code?: number; message?: string };
          events?: Array<{ name: string; attributes?: OtlpAttribute[] }>;
        }>;
      }>;
    }>;
  }): void {
    for (const rs of payload.resourceSpans ?? []) {
      const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: hexId(s.traceId),
            spanId: hexId(s.spanId),
            parentSpanId: hexId(s.parentSpanId),
            name: s.name,
            kind: s.kind ?? 0,
            attributes: attrs(s.attributes),
            status: s.status ?? {},
            events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
            service,
            scope: ss.scope?.name ?? '',
          });
        }
      }
    }
  }
}

/** One item of a Sentry envelope: its header and its JSON payload. */
export interface EnvelopeItem {
  type: string;
  payload: Record<string, unknown>;
}

/** A Sentry event as received (the `event` items of the envelopes). */
export type SentryEvent = Record<string, unknown> & {
  exception?: { values?: Array<{ type?: string; value?: string }> };
  message?: string | { formatted?: string };
  tags?: Record<string, string>;
  contexts?: Record<string, Record<string, unknown>>;
  request?: { method?: string; url?: string; query_string?: string; headers?: Record<string, string> };
  user?: Record<string, unknown>;
  transaction?: string;
};

/** Receives Sentry envelopes (`POST /api/<project>/envelope/`); give the app {@link dsn}. */
export class SentryReceiver {
  readonly envelopes: Array<{ header: Record<string, unknown>; items: EnvelopeItem[] }> = [];
  /** Raw request bodies, for "this never appears anywhere" checks. */
  readonly rawBodies: string[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<SentryReceiver> {
    const server = createServer();
    const receiver = new SentryReceiver(server, await listen(server));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const body = (await readBody(req)).toString('utf8');
        if (/^\/api\/\d+\/envelope\/?/.test(req.url ?? '')) receiver.ingest(body);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      })().catch(() => {
        res.writeHead(400);
        res.end();
      });
    });
    return receiver;
  }

  /** A DSN for project 7 that points at this receiver. */
  get dsn(): string {
    return `http://publickey@127.0.0.1:${this.port}/7`;
  }

  /** Every item of every envelope, in order. */
  get items(): EnvelopeItem[] {
    return this.envelopes.flatMap((e) => e.items);
  }

  /** The error events received. */
  get events(): SentryEvent[] {
    return this.items.filter((i) => i.type === 'event').map((i) => i.payload as SentryEvent);
  }

  async waitForEvents(count: number, timeout = 5_000): Promise<SentryEvent[]> {
    // Returns what arrived either way: a caller asserting "exactly n" sees the real count.
    await waitFor(`${count} Sentry event(s)`, timeout, () => this.events.length >= count).catch(
      () => undefined,
    );
    return this.events;
  }

  clear(): void {
    this.envelopes.length = 0;
    this.rawBodies.length = 0;
  }

  close(): Promise<void> {
    return close(this.server);
  }

  private ingest(body: string): void {
    this.rawBodies.push(body);
    const lines = body.split('\n');
    const header = JSON.parse(lines[0]) as Record<string, unknown>;
    const items: EnvelopeItem[] = [];
    for (let i = 1; i + 1 < lines.length; i += 2) {
      if (!lines[i]) continue;
      const itemHeader = JSON.parse(lines[i]) as { type: string };
      let payload: Record<string, unknown> = {};
      try {
        payload = JSON.parse(lines[i + 1]) as Record<string, unknown>;
      } catch {
        // attachments are not JSON; keep the type only
      }
      items.push({ type: itemHeader.type, payload });
    }
    this.envelopes.push({ header, items });
  }
}

/**
 * `promtool check metrics` on an exposition: `{ ok, output }`. Throws, with how to install it, when
 * promtool is missing (Debian/Ubuntu package `prometheus`).
 */
export function promtoolCheck(
  exposition: string,
): Promise<{ ok: boolean; code: number | null; output: string }> {
  if (!existsSync(PROMTOOL)) {
    throw new Error(
      `${PROMTOOL} not found. Install it with: sudo apt-get install -y prometheus (the Debian package ships promtool).`,
    );
  }
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ok: code === 0, code, output }));
    child.stdin.end(exposition);
  });
}

/** Parses a Prometheus exposition into samples: `name{labels} value`. */
export function parseExposition(
  text: string,
): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const lm of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[lm[1]] = lm[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/** The value of one sample (labels must match exactly those given; others are ignored), or undefined. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  return parseExposition(text).find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

/** Sum of every sample of `name` whose labels include `labels`. */
export function sumSamples(text: string, name: string, labels: Record<string, string> = {}): number {
  return parseExposition(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}
