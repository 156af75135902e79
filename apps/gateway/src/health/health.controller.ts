import { Controller, Get, Header, ServiceUnavailableException } from '@nestjs/common';
import { HealthService, type ReadinessReport } from './health.service';

/** `GET /health` (liveness) and `GET /health/ready` (readiness) for orchestrators and load balancers. */
@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  /** 200 while the process can answer HTTP. Never touches Redis, so a Redis outage never restarts the app. */
  @Get()
  @Header('Cache-Control', 'no-store')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /**
   * 200 with `ok` or `degraded` (Redis down: the app still serves on its fallbacks); 503 only when the app
   * cannot serve at all, e.g. during shutdown.
   * @throws ServiceUnavailableException while shutting down.
   */
  @Get('ready')
  @Header('Cache-Control', 'no-store')
  ready(): ReadinessReport {
    const report = this.health.readiness();
    if ('notReady' in report) {
      throw new ServiceUnavailableException({
        status: 'unavailable',
        reason: report.notReady,
        uptimeMs: this.health.uptime(),
      });
    }
    return report;
  }
}
