// pgjdbc (Java; Debian's libpostgresql-jdbc-java and a JDK, see scripts/test-prereqs.mjs) through the
// gateway: batches (pipelined executions), server-prepared statements past the prepare threshold,
// cursor fetches (PortalSuspended), savepoints after an error, metadata queries and cancel; and a
// masked read with binary transfer (numbers, dates and timestamps masked in binary format).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { auditRecords, gatewayAndPort, type Gw } from '../support/harness.js';
import { runCmd } from '../support/clients.js';
import { expectTools } from '../support/expect-tools.js';

const DRIVER = '/usr/share/java/postgresql.jar';
const SOURCE = join(import.meta.dirname, 'clients', 'PgjdbcClient.java');

const MASKING = `masking:
  columns:
    - { column: jdbc_mask.ssn, strategy: partial, keep_last: 4 }
    - { column: jdbc_mask.mrn, strategy: tokenize }
    - { column: jdbc_mask.full_name, strategy: redact }
    - { column: jdbc_mask.date_of_birth, strategy: year_only }
    - { column: jdbc_mask.balance, strategy: tokenize }
    - { column: jdbc_mask.seen, strategy: year_only }
  detectors: [us_ssn, email]
default: allow
`;

/** A gateway and a port on it; `masking` gets the table jdbc_mask and the policy above. */
async function gateway(masking: boolean): Promise<{ gw: Gw; port: number }> {
  const { gw, port } = await gatewayAndPort(masking ? MASKING : undefined);
  if (masking) {
    const admin = new pg.Client({ host: gw.pg.host, port: gw.pg.port, user: gw.pg.superuser.user, password: gw.pg.superuser.password, database: 'ehr' });
    await admin.connect();
    await admin.query(`DROP TABLE IF EXISTS jdbc_mask;
      CREATE TABLE jdbc_mask (id int, mrn text, full_name text, ssn text, date_of_birth date, email text, city text, visits int, balance numeric, seen timestamptz);
      INSERT INTO jdbc_mask SELECT g, 'MRN-' || (70000000 + g), 'Zorro' || g || ' Quint', '123-45-' || (6780 + g), date '1980-05-17' + g,
        'zorro' || g || '@clinic.example', 'City', g, g * 10.5, timestamptz '2024-03-04 05:06:07+00' FROM generate_series(1, 5) g;
      GRANT ALL ON jdbc_mask TO PUBLIC`);
    await admin.end();
  }
  return { gw, port };
}

// Without a JDK or the driver this fails naming the packages, instead of a Java error.
const hasJava = expectTools('jdk', 'pgjdbc');

describe.skipIf(!hasJava)('pgjdbc through the gateway', () => {
  let gw: Gw;
  let port: number;
  beforeAll(async () => ({ gw, port } = await gateway(false)));
  afterAll(async () => gw?.close());

  it('runs a Java service\'s usual work unchanged, with every execution on record', async () => {
    const r = await runCmd('java', ['-cp', DRIVER, SOURCE, String(port)], { timeoutMs: 90_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      batch: '300',
      names: Array.from({ length: 10 }, (_, i) => `name-${i + 1}`).join(','),
      fetched: '300',
      big_fetch: '1500',
      error: '22012',
      after_error: '300',
      metadata_tables: '1',
      cancelled: '57014',
    });
    const records = auditRecords(gw);
    const resultOf = (st: Record<string, unknown>) => records.find((x) => x['type'] === 'statement.result' && x['statement'] === st['seq']);
    const inserts = records.filter((x) => x['type'] === 'statement' && x['sql'] === 'INSERT INTO jdbc_t (id, name, amount) VALUES ($1, $2, $3)');
    expect(inserts).toHaveLength(300);
    expect(inserts.every((st) => resultOf(st)?.['rows'] === 1)).toBe(true);
    const selects = records.filter((x) => x['type'] === 'statement' && x['sql'] === 'SELECT name, amount, at FROM jdbc_t WHERE id = $1');
    expect(selects.map((st) => resultOf(st)?.['rows'])).toEqual(Array.from({ length: 10 }, () => 1));
    // The cursor fetch: one Execute per fetch of 50 rows, each suspended until the last.
    const fetchRecords = records.filter((x) => x['type'] === 'statement' && x['sql'] === 'SELECT id FROM jdbc_t ORDER BY id');
    const fetches = fetchRecords.map(resultOf);
    expect(fetches.filter((f) => f?.['suspended'] === true).length).toBeGreaterThanOrEqual(5);
    expect(fetches.at(-1)).toMatchObject({ rows: 0, tag: 'SELECT 0' });
    // the first Execute starts the result, every later one continues it
    expect(fetchRecords.map((st) => st['continues'] === true)).toEqual(fetchRecords.map((_, i) => i > 0));
    // 1,500 rows fetched 100 at a time: the recording keeps the first 1,000 (the row cap of one
    // statement), not every fetch's rows, and records the true count.
    const recordings = join(gw.dir, 'data', 'recordings');
    const rec = readdirSync(recordings).map((f) => readFileSync(join(recordings, f), 'utf8')).find((t) => t.includes('big_fetch'))!;
    const events = rec.trim().split('\n').map((l) => JSON.parse(l) as { type: string; n?: number; sql?: string; rows?: number });
    const fetchNs = new Set(events.filter((e) => e.type === 'statement' && e.sql?.includes('big_fetch')).map((e) => e.n));
    expect(fetchNs.size).toBeGreaterThanOrEqual(15);
    expect(events.filter((e) => e.type === 'row' && fetchNs.has(e.n)).length).toBe(1000);
    expect(events.find((e) => e.type === 'complete' && fetchNs.has(e.n))).toMatchObject({ rows: 1500 });
  });

});

describe.skipIf(!hasJava)('pgjdbc reading masked data', () => {
  let gw: Gw;
  let port: number;
  beforeAll(async () => ({ gw, port } = await gateway(true)));
  afterAll(async () => gw?.close());

  it('masks what a server-prepared statement returns in binary format, the same as in text', async () => {
    const r = await runCmd('java', ['-cp', DRIVER, SOURCE, String(port), 'masked'], { timeoutMs: 90_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as Record<string, string>;
    expect(Object.keys(rows)).toHaveLength(9);
    for (const raw of ['MRN-7000000', 'Zorro', 'Quint', '123-45-678', '1980-05-', 'clinic.example', '10.5', '21.0', '03-04', '05:06']) {
      expect(JSON.stringify(rows)).not.toContain(raw);
    }
    for (const id of [1, 2, 3]) {
      const [first, ...again] = [1, 2, 3].map((run) => rows[`run${run}-${id}`]);
      // every run alike, whatever format each run's results came in
      expect(again).toEqual([first, first]);
      const [, mrn, name, ssn, dob, email, city, visits, balance, seen] = first!.split('|');
      expect(mrn).toMatch(/^tok_[0-9a-f]{16}$/);
      expect([name, ssn, dob, email, city, visits]).toEqual(['***', `***-**-${6780 + id}`, '1980-01-01', '<email>', 'City', String(id)]);
      expect(balance).toMatch(/^[1-9]\d*$/);
      expect(seen).toBe('2024-01-01 00:00:00+00');
    }
    // The session recording notes binary values as such: the driver did switch to binary transfer.
    const recordings = join(gw.dir, 'data', 'recordings');
    const texts = readdirSync(recordings).map((f) => readFileSync(join(recordings, f), 'utf8')).filter((t) => t.includes('FROM jdbc_mask'));
    expect(texts).toHaveLength(1);
    expect(texts[0]).toMatch(/<binary \d+ bytes>/);
  });
});
