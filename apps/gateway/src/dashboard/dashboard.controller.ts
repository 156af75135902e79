import { Controller, Get, Header } from '@nestjs/common';
import { DashboardAssets } from './dashboard.assets';

/** Only our own files and our own API: no inline script or style, nothing from elsewhere, no framing. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The dashboard at `GET /`: static HTML + JS that polls `/health/ready`, `/stats/overview` and
 * `/stats/series` every 2 s and shows readiness, breaker state per client, request rate, cache hit rate,
 * limiter rejections and memory.
 */
@Controller()
export class DashboardController {
  constructor(private readonly assets: DashboardAssets) {}

  /** The page. */
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', CSP)
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  index(): string {
    return this.assets.html;
  }

  /** The page's script. */
  @Get('dashboard/dashboard.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  script(): string {
    return this.assets.js;
  }

  /** The page's style sheet. */
  @Get('dashboard/dashboard.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  style(): string {
    return this.assets.css;
  }
}
