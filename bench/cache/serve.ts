// The child-process end of bench/cache/http.ts: answers `cpu`, custom questions and `exit` over IPC.
import type { INestApplication } from '@nestjs/common';

/** Starts answering the parent's questions; `answers` maps a question to its answer. */
export function serve(
  apps: INestApplication[],
  answers: Record<string, () => unknown | Promise<unknown>> = {},
): void {
  process.on('message', (m: { id: number; what: string }) => {
    void (async () => {
      if (m.what === 'exit') {
        await Promise.allSettled(apps.map((a) => a.close()));
        process.exit(0);
      }
      const value =
        m.what === 'cpu'
          ? (() => {
              const u = process.cpuUsage();
              return u.user + u.system;
            })()
          : await answers[m.what]?.();
      process.send!({ id: m.id, value });
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

/** Listens on a free loopback port and returns it. */
export async function listen(app: INestApplication): Promise<number> {
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as { port: number }).port;
}
