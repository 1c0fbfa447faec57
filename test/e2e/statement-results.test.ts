// Evidence per execution through the real gateway: every Execute of a prepared statement gets its own
// statement record, and pipelined statements each get their own statement.result (rows, error, or
// skipped because an earlier one failed), as PostgreSQL itself ran them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
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
});
