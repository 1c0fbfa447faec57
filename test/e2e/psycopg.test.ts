// psycopg 3 (Python; Debian's python3-psycopg, see scripts/test-prereqs.mjs) through the gateway: server-side
// binding, executemany, automatic prepared statements, binary results, errors in transactions, COPY
// both ways, pipeline mode and cancel, with the evidence of the pipelined statements checked too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { auditRecords, gatewayAndPort, type Gw } from '../support/harness.js';
import { runCmd } from '../support/clients.js';
import { expectTools } from '../support/expect-tools.js';

// Debian's interpreter: its python3-psycopg is what CI installs (a pyenv python3 may come first on PATH).
const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'clients', 'psycopg_client.py');

// Without psycopg this fails naming python3-psycopg, instead of a Python traceback.
const hasPsycopg = expectTools('psycopg');

describe.skipIf(!hasPsycopg)('psycopg through the gateway', () => {
  let gw: Gw;
  let port: number;
  beforeAll(async () => ({ gw, port } = await gatewayAndPort()));
  afterAll(async () => gw?.close());

  it('runs an application\'s usual work unchanged, and each pipelined statement has its own evidence', async () => {
    const r = await runCmd(PYTHON, [SCRIPT, String(port)], { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({
      count: 40,
      sum: '1830.0', // 1.5 x (11 + ... + 50)
      names: ['name-1', 'name-2', 'name-3', 'name-4', 'name-5', 'name-6', 'name-7', 'name-8'],
      binary_row: [7, 'name-7', '10.5'],
      error: '22012',
      after_error: 0,
      copied: 1000,
      pipeline: ['error'],
      cancelled: '57014',
    });
    expect(out['copy_out_bytes']).toBeGreaterThan(15_000);

    // Every execution of the automatically prepared SELECT is on record, each with its row.
    const records = auditRecords(gw);
    const resultOf = (st: Record<string, unknown>) => records.find((x) => x['type'] === 'statement.result' && x['statement'] === st['seq']);
    const byName = records.filter((x) => x['type'] === 'statement' && x['sql'] === 'SELECT name FROM py_t WHERE id = $1');
    expect(byName).toHaveLength(8);
    expect(byName.map((st) => resultOf(st)?.['rows'])).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    const pipe = (tag: string) => records.find((x) => x['type'] === 'statement' && String(x['sql']).includes(tag));
    expect(resultOf(pipe('py_pipe_a')!)).toMatchObject({ rows: 1 });
    expect(resultOf(pipe('py_pipe_b')!)).toMatchObject({ error: '22012' });
    expect(resultOf(pipe('py_pipe_c')!)).toMatchObject({ skipped: true });
  });
});
