// The policy's size and count limits through a real gateway and real clients (node-postgres, psql,
// pgbench, the raw protocol): named errors, sessions that go on after a refused statement, a message
// over the limit ending its session, pipelines held back instead of refused, and large statements
// analysed off the event loop while other clients keep being served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { auditRecords, startGateway, type Gw } from '../support/harness.js';
import { pgClient, psql, rawPg, runCmd } from '../support/clients.js';

const POLICY = `masking:
  columns:
    - { column: lim_patients.ssn, strategy: partial, keep_last: 4 }
  unmasked_groups: [privacy-officers]
limits:
  pipeline_depth: 50
rules:
  - name: no-lim-blocked
    when: { tables: [lim_blocked] }
    action: block
default: allow
`;

const SECRET = 'Zebulon-Quimby-PHI';
const RAW_SSN = '321-54-9876';

let gw: Gw;
/** olivia reads unmasked; alice is a masked reader (masking at the source). */
let port: number;
let maskedPort: number;
let dir: string;

beforeAll(async () => {
  gw = await startGateway({ policy: POLICY });
  const admin = new pg.Client({ host: gw.pg.host, port: gw.pg.port, user: gw.pg.superuser.user, password: gw.pg.superuser.password, database: 'ehr' });
  await admin.connect();
  await admin.query(`DROP TABLE IF EXISTS lim_patients;
    CREATE TABLE lim_patients (id int PRIMARY KEY, ssn text, city text);
    INSERT INTO lim_patients VALUES (1, '${RAW_SSN}', 'Oslo'), (2, '111-22-3333', 'Bern');
    GRANT ALL ON lim_patients TO PUBLIC`);
  await admin.end();
  [port, maskedPort] = await Promise.all([
    gw.token('olivia').then((t) => gw.connect('ehr', t)).then((c) => c.port),
    gw.token('alice').then((t) => gw.connect('ehr', t)).then((c) => c.port),
  ]);
  dir = mkdtempSync(join(tmpdir(), 'phigate-limits-'));
});
afterAll(async () => {
  await gw?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One SELECT of about `bytes` bytes: a long IN list (many tokens, as costly to parse as SQL gets per byte). */
function bigSelect(bytes: number, table = 'lim_patients'): string {
  const ids: number[] = [];
  for (let i = 3, len = 0; len < bytes; i++, len += String(i).length + 1) ids.push(i);
  return `SELECT id, ssn, '${SECRET}' AS tag FROM ${table} WHERE id IN (1, 2, ${ids.join(',')}) ORDER BY id`;
}

async function withClient<T>(p: number, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = pgClient(p, { user: 'olivia' });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

function refusals(key: string): Record<string, unknown>[] {
  return auditRecords(gw).filter((r) => r['type'] === 'statement' && String(r['reason'] ?? '').includes(key));
}

describe('limits', () => {
  it('refuses a Query over limits.statement_bytes by name, records it without its text, and the session goes on (node-postgres)', async () => {
    await withClient(port, async (c) => {
      const err = await c.query(bigSelect(1100 * 1024)).then(() => undefined, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('54000');
      expect(err?.message).toMatch(/^phigate: statement of 1\.\d MiB exceeds limits\.statement_bytes \(1 MiB\)/);
      expect((await c.query('select 1 AS one')).rows).toEqual([{ one: 1 }]);
      // Extended protocol: the refused Parse skips to Sync like any error, and the next statement runs.
      const err2 = await c.query({ text: `${bigSelect(1100 * 1024)} LIMIT $1`, values: [1] }).then(() => undefined, (e: pg.DatabaseError) => e);
      expect(err2?.message).toMatch(/exceeds limits\.statement_bytes/);
      expect((await c.query({ text: 'select $1::int AS n', values: [7] })).rows).toEqual([{ n: 7 }]);
    });
    const recs = refusals('limits.statement_bytes');
    expect(recs.length).toBe(2);
    for (const r of recs) {
      expect(r['decision']).toBe('block');
      expect(String(r['sql']).length).toBeLessThan(8192);
      expect(JSON.stringify(r)).not.toContain(SECRET);
    }
  });

  it('refuses a Query of more than limits.statements_per_query statements whole, runs one of 1,000 (node-postgres)', async () => {
    await withClient(port, async (c) => {
      await c.query('CREATE TEMP TABLE lim_count (n int)');
      const err = await c.query('INSERT INTO lim_count VALUES (1);'.repeat(1001)).then(() => undefined, (e: pg.DatabaseError) => e);
      expect(err?.code).toBe('54000');
      expect(err?.message).toBe('phigate: query of 1001 statements exceeds limits.statements_per_query (1000), so none of them was run');
      expect((await c.query('SELECT count(*)::int AS n FROM lim_count')).rows).toEqual([{ n: 0 }]);
      const all = (await c.query('select 1 AS one;'.repeat(1000))) as unknown as pg.QueryResult[];
      expect(all.length).toBe(1000);
      expect(all.every((r) => r.rows[0].one === 1)).toBe(true);
      expect((await c.query('select 2 AS two')).rows).toEqual([{ two: 2 }]);
    });
    expect(refusals('limits.statements_per_query').length).toBe(1);
  });

  it('names both limits to psql, which goes on with the next command', async () => {
    const file = join(dir, 'big.sql');
    writeFileSync(file, `${bigSelect(1100 * 1024)};\nselect 'after' AS next;\n`);
    const big = await psql(port, ['-U', 'olivia', '-v', 'ON_ERROR_STOP=0', '-At', '-f', file]);
    expect(big.stderr).toMatch(/exceeds limits\.statement_bytes \(1 MiB\)/);
    expect(big.stdout.trim()).toBe('after');
    const many = await psql(port, ['-U', 'olivia', '-v', 'ON_ERROR_STOP=0', '-At', '-c', 'select 1;'.repeat(1001), '-c', "select 'after'"]);
    expect(many.stderr).toMatch(/query of 1001 statements exceeds limits\.statements_per_query \(1000\)/);
    expect(many.stdout.trim()).toBe('after');
  });

  it('ends a session whose message is over limits.message_bytes with the named error', async () => {
    const sock = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    sock.on('error', () => undefined);
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(serialize.startup({ user: 'olivia', database: 'ehr' }));
    for (let i = 0; i < 250 && !received.includes(Buffer.from([0x5a, 0, 0, 0, 5])); i++) await new Promise((r) => setTimeout(r, 20));
    // A Query claiming 65 MiB: refused at its header, before any of its body is buffered.
    const header = Buffer.alloc(5);
    header[0] = 0x51;
    header.writeInt32BE(65 * 1024 * 1024 + 4, 1);
    sock.write(Buffer.concat([header, Buffer.from('select 1')]));
    await closed;
    const text = received.toString('latin1');
    expect(text).toContain('FATAL');
    expect(text).toContain('54000');
    expect(text).toMatch(/message of 65\.0 MiB exceeds limits\.message_bytes \(64 MiB\)/);
    expect(refusals('limits.message_bytes').length).toBe(1);
  });

  it('holds back a pipeline deeper than limits.pipeline_depth instead of refusing it (raw protocol and pgbench)', async () => {
    const raw = await rawPg(port);
    try {
      const parts: Buffer[] = [serialize.parse({ name: 'q', text: 'select $1::int AS n', types: [] })];
      for (let i = 0; i < 1000; i++) parts.push(serialize.bind({ statement: 'q', values: [String(i)] }), serialize.execute({}));
      parts.push(serialize.sync());
      raw.send(Buffer.concat(parts));
      await raw.readyForQuery(1, 30_000);
      const text = raw.received().toString('latin1');
      expect(text.match(/C\x00\x00\x00\x0dSELECT 1\x00/g)?.length).toBe(1000);
      expect(text).not.toContain('pipeline_depth');
    } finally {
      raw.close();
    }
    const script = join(dir, 'pipeline.sql');
    writeFileSync(script, `\\startpipeline\n${'select 1;\n'.repeat(200)}\\endpipeline\n`);
    // The gateway did stop reading (the depth is 50), and the client was not refused.
    expect(gw.server.stdout() + gw.server.stderr()).toContain('pipeline depth reached');
    const r = await runCmd('pgbench', ['-n', '-M', 'extended', '-t', '3', '-f', script, `host=127.0.0.1 port=${port} dbname=ehr user=olivia`], { timeoutMs: 60_000 });
    expect(r.stderr).not.toMatch(/error|abort/i);
    expect(r.stdout).toMatch(/number of transactions actually processed: 3\/3/);
  });

  it('answers in order a burst of statements each just under the worker threshold (the run is sliced, not reordered)', async () => {
    const raw = await rawPg(port);
    try {
      const list = Array.from({ length: 1200 }, (_, k) => k).join(',');
      const n = 150;
      raw.send(Buffer.concat(Array.from({ length: n }, (_, i) => serialize.query(`SELECT ${i} AS n WHERE ${i} IN (${list})`))));
      await raw.readyForQuery(n, 60_000);
      const got: number[] = [];
      const buf = raw.received();
      for (let off = 0; off + 5 <= buf.length;) {
        const len = buf.readInt32BE(off + 1);
        // DataRow: one column, its length, its text.
        if (buf[off] === 0x44) got.push(Number(buf.subarray(off + 11, off + 1 + len).toString()));
        off += 1 + len;
      }
      expect(got).toEqual(Array.from({ length: n }, (_, i) => i));
    } finally {
      raw.close();
    }
  });

  it('keeps serving other clients and /healthz while one sends a 900 KiB statement', async () => {
    // Refused by a rule, so its whole time is the gateway's own analysis (PostgreSQL never parses
    // it): parsed inline it would hold the event loop throughout and nothing else would be answered.
    const big = bigSelect(900 * 1024, 'lim_blocked');
    await withClient(port, async (a) => withClient(port, async (b) => {
      let inProgress = true;
      let during = 0;
      let health = 0;
      const other = (async () => {
        while (inProgress) {
          await b.query('select 1');
          if (inProgress) during++;
        }
      })();
      const healthz = (async () => {
        while (inProgress) {
          const res = await fetch(`${gw.url}/healthz`);
          if (res.ok && inProgress) health++;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      // Both loops are running before the big statement is sent.
      while (during < 3 || health < 1) await new Promise((r) => setTimeout(r, 10));
      const before = { during, health };
      const err = await a.query(big).then(() => undefined, (e: pg.DatabaseError) => e).finally(() => (inProgress = false));
      await Promise.all([other, healthz]);
      expect(err?.message).toMatch(/no-lim-blocked/);
      expect(during - before.during).toBeGreaterThanOrEqual(20);
      expect(health - before.health).toBeGreaterThanOrEqual(1);
      expect((await a.query('select 1 AS one')).rows).toEqual([{ one: 1 }]);
    }));
    const rec = auditRecords(gw).filter((r) => r['type'] === 'statement' && String(r['sql']).includes('lim_blocked')).pop();
    expect(rec?.['decision']).toBe('block');
    expect(JSON.stringify(rec)).not.toContain(SECRET);
  });

  it("rewrites a masked reader's large statement at the source through the worker", async () => {
    const c = pgClient(maskedPort);
    await c.connect();
    try {
      const res = await c.query(bigSelect(200 * 1024));
      expect(res.rows.map((r: { ssn: string }) => r.ssn)).toEqual(['***-**-9876', '***-**-3333']);
      expect(JSON.stringify(res.rows)).not.toContain(RAW_SSN);
      expect((await c.query('select 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    const rec = auditRecords(gw).filter((r) => r['type'] === 'statement' && r['user'] === 'alice' && String(r['sql']).includes('lim_patients')).pop();
    expect(rec?.['rewritten']).toEqual({ relations: ['public.lim_patients'], columns: ['public.lim_patients.ssn:partial'] });
  });
});
