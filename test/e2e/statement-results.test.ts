// Evidence per execution through the real gateway: every Execute of a prepared statement gets its own
// statement record, and pipelined statements each get their own statement.result (rows, error, or
// skipped because an earlier one failed), as PostgreSQL itself ran them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import pg from 'pg';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditRecords, gatewayAndPort, type Gw } from '../support/harness.js';
import { pgClient, rawPg } from '../support/clients.js';

let gw: Gw;
let port: number;

beforeAll(async () => ({ gw, port } = await gatewayAndPort()));
afterAll(async () => gw?.close());

type Rec = Record<string, unknown>;

/** The statement records whose SQL matches, each with its statement.result (waiting for them to be written). */
async function withResults(match: (sql: string) => boolean, count: number): Promise<{ st: Rec; result: Rec | undefined }[]> {
  let out: { st: Rec; result: Rec | undefined }[] = [];
  for (let i = 0; i < 100; i++) {
    const all = auditRecords(gw);
    out = all.filter((r) => r['type'] === 'statement' && match(String(r['sql'])))
      .map((st) => ({ st, result: all.find((r) => r['type'] === 'statement.result' && r['statement'] === st['seq']) }));
    if (out.length >= count && out.every((x) => x.result)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return out;
}

describe('statement records per execution', () => {
  it('records every execution of a prepared statement, each with its own result', async () => {
    const c = pgClient(port);
    await c.connect();
    try {
      for (let i = 1; i <= 5; i++) {
        const r = await c.query({ name: 'series', text: 'SELECT g AS stmt_results_series FROM generate_series(1, $1::int) g', values: [i] });
        expect(r.rowCount).toBe(i);
      }
    } finally {
      await c.end();
    }
    const got = await withResults((sql) => sql.includes('stmt_results_series'), 5);
    expect(got).toHaveLength(5);
    expect(got.map((x) => x.st['decision'])).toEqual(['allow', 'allow', 'allow', 'allow', 'allow']);
    // Bind parameters are never in the record: the text keeps its placeholder.
    expect(got[0]!.st['sql']).toBe('SELECT g AS stmt_results_series FROM generate_series(<n>, $1::int) g');
    expect(got.map((x) => x.result?.['rows'])).toEqual([1, 2, 3, 4, 5]);
  });

  it('gives each statement of a pipeline its own result; after an error the server skips the rest, and the records say so', async () => {
    const c = await rawPg(port);
    const run = (sql: string): Buffer[] => [serialize.parse({ text: sql }), serialize.bind({}), serialize.execute({})];
    c.send(Buffer.concat([
      ...run('SELECT 1 AS pipe_a UNION ALL SELECT 2'),
      ...run('SELECT 1 / 0 AS pipe_b'),
      ...run('SELECT 3 AS pipe_c'),
      serialize.sync(),
      serialize.query("SELECT 4 AS pipe_d; SELECT 5 AS pipe_e UNION ALL SELECT 6 UNION ALL SELECT 7"),
    ]));
    await c.readyForQuery(2);
    c.close();
    const got = await withResults((sql) => /pipe_[a-e]/.test(sql), 4);
    const bySql = Object.fromEntries(got.map((x) => [/pipe_([a-e])/.exec(String(x.st['sql']))![1], x.result]));
    expect(bySql['a']).toMatchObject({ rows: 2, tag: 'SELECT 2' });
    expect(bySql['a']).not.toHaveProperty('error');
    expect(bySql['b']).toMatchObject({ rows: 0, error: '22012' });
    expect(bySql['c']).toMatchObject({ rows: 0, skipped: true });
    // one Query with two statements: one record, rows of both
    expect(bySql['d']).toMatchObject({ rows: 4, tag: 'SELECT 3' });
  });

  it('writes each statement of a pipeline to the log before PostgreSQL runs it, in one append per turn', async () => {
    // PostgreSQL itself reports the log's size as it runs each statement (pg_stat_file): the record
    // of that statement must already be within it.
    const own = await gatewayAndPort('default: allow\nserver_access:\n  files: [engineering]\n');
    const log = join(own.gw.dir, 'data', 'audit', 'audit.jsonl');
    // The database's server process (another OS user when tests run as root) must reach the file to stat it.
    for (const d of [own.gw.dir, join(own.gw.dir, 'data'), join(own.gw.dir, 'data', 'audit')]) chmodSync(d, 0o711);
    const role = own.gw.pg.roles.scram.user;
    const admin = new pg.Client({ host: own.gw.pg.host, port: own.gw.pg.port, user: own.gw.pg.superuser.user, password: own.gw.pg.superuser.password, database: 'ehr' });
    await admin.connect();
    const c = await rawPg(own.port);
    const n = 30;
    try {
      await admin.query(`DROP TABLE IF EXISTS batch_pipe; CREATE TABLE batch_pipe (k int, log_bytes bigint); GRANT ALL ON batch_pipe TO PUBLIC; GRANT pg_read_server_files TO ${role}`);
      const run = (sql: string): Buffer[] => [serialize.parse({ text: sql }), serialize.bind({}), serialize.execute({})];
      // One client write: the gateway receives the whole pipeline at once, as pgbench and pgjdbc send theirs.
      c.send(Buffer.concat([
        ...Array.from({ length: n }, (_, k) => run(`INSERT INTO batch_pipe SELECT ${k}, (pg_stat_file('${log}')).size`)).flat(),
        serialize.sync(),
      ]));
      await c.readyForQuery(1);
      const rows = (await admin.query<{ k: number; log_bytes: string }>('SELECT k, log_bytes FROM batch_pipe ORDER BY k')).rows;
      expect(rows.map((r) => r.k)).toEqual(Array.from({ length: n }, (_, k) => k));
      const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      let end = 0;
      const ends: number[] = [];
      const recs: { seq: number; at: string; end: number }[] = [];
      for (const l of lines) {
        end += Buffer.byteLength(l) + 1;
        const r = JSON.parse(l) as Rec;
        ends.push(end);
        if (r['type'] === 'statement' && String(r['sql']).includes('batch_pipe')) recs.push({ seq: Number(r['seq']), at: String(r['at']), end });
      }
      expect(recs).toHaveLength(n);
      // Consecutive: nothing of the session was appended between them.
      expect(recs.map((r) => r.seq - recs[0]!.seq)).toEqual(Array.from({ length: n }, (_, k) => k));
      rows.forEach((row, k) => expect(Number(row.log_bytes)).toBeGreaterThanOrEqual(recs[k]!.end));
      // One append per turn: when PostgreSQL ran a statement, the records of the statements the same
      // append carried (same `at`) were written too, not only its own.
      rows.forEach((row, k) => {
        const batchEnd = Math.max(...recs.filter((r) => r.at === recs[k]!.at).map((r) => r.end));
        expect(Number(row.log_bytes)).toBeGreaterThanOrEqual(batchEnd);
      });
    } finally {
      c.close();
      await admin.query(`DROP TABLE IF EXISTS batch_pipe; REVOKE pg_read_server_files FROM ${role}`);
      await admin.end();
      await own.gw.close();
    }
  });
});
