import 'reflect-metadata';
import { Module, type INestApplicationContext, type ModuleMetadata } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

/** A Nest application context (no HTTP) of a module made of `imports`, logging errors and warnings only. */
export function createContext(
  imports: NonNullable<ModuleMetadata['imports']>,
): Promise<INestApplicationContext> {
  @Module({ imports })
  class BenchModule {}
  return NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
}
