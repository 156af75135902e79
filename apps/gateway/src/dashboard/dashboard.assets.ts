import { Injectable } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Directory of the page's static files: next to this file in the sources and in the build (nest-cli assets). */
export const PUBLIC_DIR = join(__dirname, 'public');

/** The dashboard's files, read once at start-up (a few KB; no build step, no framework). */
@Injectable()
export class DashboardAssets {
  readonly html: string;
  readonly js: string;
  readonly css: string;

  constructor() {
    if (!existsSync(join(PUBLIC_DIR, 'index.html'))) {
      throw new Error(
        `Dashboard files not found in ${PUBLIC_DIR}. Build with \`npm run build\` (nest-cli.json copies ` +
          `apps/gateway/src/dashboard/public/** next to the compiled dashboard).`,
      );
    }
    const read = (file: string) => readFileSync(join(PUBLIC_DIR, file), 'utf8');
    this.html = read('index.html');
    this.js = read('dashboard.js');
    this.css = read('dashboard.css');
  }
}
