// Which statements raise the settings barrier (gate.ts mayChangeLexing): those that may change how
// PostgreSQL reads later statement text, and no others, so pipelines that set an application's own
// settings are not refused after an Execute (session/barrier.ts awaitingSync).
import { beforeAll, describe, expect, it } from 'vitest';
import { classify, initClassifier } from '../../src/policy/classify/index.js';
import { mayChangeLexing } from '../../src/server/gate.js';

beforeAll(async () => initClassifier());

function lexing(sql: string): boolean {
  const c = classify(sql);
  if (!c.ok) throw new Error(`${sql}: ${c.error}`);
  return c.statements.some(mayChangeLexing);
}

describe('settings barrier', () => {
  it.each([
    "SET standard_conforming_strings = off",
    "SET client_encoding TO 'LATIN1'",
    'RESET ALL',
    "SELECT set_config('client_encoding', 'SJIS', false)",
    "SELECT pg_catalog.set_config('Standard_Conforming_Strings', 'off', false)",
    "SELECT set_config(current_user || '_x', 'off', false)",
    "SELECT set_config(setting_name => 'app.x', new_value => 'off', is_local => false)",
    "SELECT set_config('app.tenant', '7', false), set_config('client_encoding', 'LATIN1', false)",
    "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
    "DO $$ BEGIN PERFORM 1; END $$",
  ])('raised by %s', (sql) => {
    expect(lexing(sql)).toBe(true);
  });

  it.each([
    "SELECT set_config('app.tenant', '7', false)",
    "SELECT set_config('search_path', 'public', true)",
    'SET search_path = public',
    'SELECT 1',
  ])('not raised by %s', (sql) => {
    expect(lexing(sql)).toBe(false);
  });
});
