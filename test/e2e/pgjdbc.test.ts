// pgjdbc (Java; Debian's libpostgresql-jdbc-java and a JDK, which .ci/run installs) through the
// gateway: batches (pipelined executions), server-prepared statements past the prepare threshold,
// cursor fetches (PortalSuspended), savepoints after an error, metadata queries and cancel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGateway, type Gw } from '../support/harness.js';
import { runCmd } from '../support/clients.js';

const DRIVER = '/usr/share/java/postgresql.jar';
const SOURCE = join(import.meta.dirname, 'clients', 'PgjdbcClient.java');

let gw: Gw;
let port: number;

beforeAll(async () => {
  gw = await startGateway({ policy: 'default: allow\n' });
  port = (await gw.connect('ehr', await gw.token('alice'))).port;
});
afterAll(async () => gw?.close());

describe('pgjdbc through the gateway', () => {
  it('runs a Java service\'s usual work unchanged, with every execution on record', async () => {
    const r = await runCmd('java', ['-cp', DRIVER, SOURCE, String(port)], { timeoutMs: 90_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      batch: '300',
      names: Array.from({ length: 10 }, (_, i) => `name-${i + 1}`).join(','),
      fetched: '300',
      error: '22012',
      after_error: '300',
      metadata_tables: '1',
      cancelled: '57014',
    });
    const records = readFileSync(join(gw.dir, 'data', 'audit', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const resultOf = (st: Record<string, unknown>) => records.find((x) => x['type'] === 'statement.result' && x['statement'] === st['seq']);
    const inserts = records.filter((x) => x['type'] === 'statement' && x['sql'] === 'INSERT INTO jdbc_t (id, name, amount) VALUES ($1, $2, $3)');
    expect(inserts).toHaveLength(300);
    expect(inserts.every((st) => resultOf(st)?.['rows'] === 1)).toBe(true);
    const selects = records.filter((x) => x['type'] === 'statement' && x['sql'] === 'SELECT name, amount, at FROM jdbc_t WHERE id = $1');
    expect(selects.map((st) => resultOf(st)?.['rows'])).toEqual(Array.from({ length: 10 }, () => 1));
    // The cursor fetch: one Execute per fetch of 50 rows, each suspended until the last.
    const fetches = records.filter((x) => x['type'] === 'statement' && x['sql'] === 'SELECT id FROM jdbc_t ORDER BY id').map(resultOf);
    expect(fetches.filter((f) => f?.['suspended'] === true).length).toBeGreaterThanOrEqual(5);
    expect(fetches.at(-1)).toMatchObject({ rows: 0, tag: 'SELECT 0' });
  });
});
