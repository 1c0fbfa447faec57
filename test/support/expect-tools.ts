// A test per file for the system tools the file's tests run (psql, tmux, psycopg, ...): it fails
// naming the Debian package (scripts/test-prereqs.mjs) when one is missing.
import { it } from 'vitest';
import { missingTools } from './prereqs.js';

/**
 * Registers a test that fails, naming the packages, when one of `names` is missing, and returns
 * whether all are there: the tests that need them are skipped then (`describe.skipIf(!ok)`), so the
 * run fails once with the package to install instead of once per test with a bare error.
 */
export function expectTools(...names: string[]): boolean {
  const missing = missingTools(...names);
  it(`has ${names.join(', ')} (system tools these tests run)`, () => {
    if (missing) throw new Error(missing);
  });
  return missing === undefined;
}
