// vitest globalSetup: one real PostgreSQL for the whole run, handed to tests through `inject('pg')`.
import type { TestProject } from 'vitest/node';
import { startTestPostgres, type TestPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: TestPostgres;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { info, stop } = await startTestPostgres();
  project.provide('pg', info);
  return stop;
}
