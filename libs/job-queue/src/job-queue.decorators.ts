import { Inject } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ANY_JOB } from './job-queue.constants';
import type { ProcessorOptions } from './job-queue.interfaces';

/**
 * Marks a provider as the processor of a queue: its `@Process()` methods handle the queue's jobs by name, with
 * `concurrency` jobs at once per instance (validated at start-up). Only instances whose role is `worker` run it.
 * Add the class to a module's `providers`.
 * @example
 * \@Processor({ queue: 'emails', concurrency: 5 })
 * export class EmailsProcessor {
 *   \@Process('welcome')
 *   async welcome(job: Job<{ to: string }>, ctx: JobContext) { await this.mailer.send(job.data.to); }
 * }
 */
export const Processor = Reflector.createDecorator<string | ProcessorOptions>();

/**
 * Marks a method of a `@Processor()` class as the handler of jobs named `name`; without a name it takes every
 * job no named handler takes. The handler gets `(job, context)` and its return value is the job's result.
 * @example
 * \@Process('welcome') async welcome(job: Job, ctx: JobContext) { … }
 */
export const Process = Reflector.createDecorator<string | undefined, string>({
  transform: (name) => name ?? ANY_JOB,
});

/** Injection token of a registered queue's `JobQueue` handle. */
export function getQueueToken(name: string): string {
  return `redwing:job-queue:queue:${name}`;
}

/**
 * Injects the `JobQueue` handle of a queue registered with `JobQueueModule.registerQueue({ name })`.
 * @example
 * constructor(\@InjectQueue('emails') private readonly emails: JobQueue) {}
 */
export function InjectQueue(name: string): ParameterDecorator & PropertyDecorator {
  return Inject(getQueueToken(name));
}
