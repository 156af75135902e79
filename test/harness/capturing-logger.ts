import type { LoggerService } from '@nestjs/common';

/** One line a {@link CapturingLogger} received. */
export interface CapturedLine {
  level: 'log' | 'warn' | 'error' | 'debug' | 'verbose' | 'fatal';
  context?: string;
  message: string;
}

/**
 * A Nest `LoggerService` that keeps every line for assertions ("the switch is logged"). Pass it to
 * `Test.createTestingModule(...).setLogger(logger)` or `createNestApplication(adapter, { logger })`.
 */
export class CapturingLogger implements LoggerService {
  readonly lines: CapturedLine[] = [];
  log(message: unknown, context?: string): void {
    this.push('log', message, context);
  }
  warn(message: unknown, context?: string): void {
    this.push('warn', message, context);
  }
  error(message: unknown, context?: string): void {
    this.push('error', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.push('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.push('verbose', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.push('fatal', message, context);
  }
  /** The lines logged under `context`, as `"<level>: <message>"`. */
  of(context: string): string[] {
    return this.lines.filter((l) => l.context === context).map((l) => `${l.level}: ${l.message}`);
  }
  private push(level: CapturedLine['level'], message: unknown, context?: string): void {
    this.lines.push({ level, context, message: String(message) });
  }
}
