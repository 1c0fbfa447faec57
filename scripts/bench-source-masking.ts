// Bench of masking at the source: what computing masked values inside PostgreSQL costs, as server-side execution time of SELECT <masked expression> FROM a 1,000,000-row table against the raw column, per strategy.
//
// Run: npm run build && node dist/scripts/bench-source-masking.js
// It starts an embedded PostgreSQL, or uses BENCH_PG_URL (postgres://...) when set; BENCH_MASK_ROWS
// changes the row count. Times are EXPLAIN ANALYZE execution times (no client transfer, one backend,
// no parallel workers, no JIT), the best of BENCH_RUNS (3) runs.
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { DEFAULT_PLACEHOLDER, type ColumnRule, type Strategy } from '../src/masking/config.js';
import { OID } from '../src/masking/pgtypes.js';
import { maskExpression, sqlTokenKey } from '../src/masking/source/expressions.js';
import type { SourceColumnType } from '../src/masking/source/types.js';

const ROWS = Number(process.env['BENCH_MASK_ROWS'] ?? 1_000_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);

const SETUP = (rows: number): string => `DROP TABLE IF EXISTS bench_source;
CREATE TABLE bench_source AS
SELECT g AS id, 'MRN-' || lpad((10000000 + g)::text, 8, '0') AS mrn, 'Name' || g || ' Person' AS full_name,
       lpad((100 + g % 565)::text, 3, '0') || '-' || lpad((10 + g % 89)::text, 2, '0') || '-' || lpad((1000 + g % 8999)::text, 4, '0') AS ssn,
       date '1940-01-01' + (g % 29000) AS date_of_birth, (date '1940-01-01' + (g % 29000))::text AS birth_text,
       (date '1940-01-01' + (g % 29000))::timestamptz AS admitted, jsonb_build_object('ssn', g) -> 'ssn' AS meta,
       ('Person ' || g)::varchar(40) AS note_vc
FROM generate_series(1, ${rows}) g;`;

const builtin = (oid: number, sql: string, typmod = -1): SourceColumnType => ({ oid, typmod, sql, baseOid: oid, baseTypmod: typmod, baseSql: sql });
const TYPES: Record<string, SourceColumnType> = {
  id: builtin(OID.int4, 'integer'),
  mrn: builtin(OID.text, 'text'),
  full_name: builtin(OID.text, 'text'),
  ssn: builtin(OID.text, 'text'),
  date_of_birth: builtin(OID.date, 'date'),
  birth_text: builtin(OID.text, 'text'),
  admitted: builtin(OID.timestamptz, 'timestamp with time zone'),
  meta: builtin(OID.jsonb, 'jsonb'),
  note_vc: builtin(OID.varchar, 'character varying(40)', 44),
};

function rule(strategy: Strategy, keepFirst = 0, keepLast = 0): ColumnRule {
  return { table: 'bench_source', column: '', strategy, keepFirst, keepLast, placeholder: DEFAULT_PLACEHOLDER };
}

const CASES: [string, string, ColumnRule][] = [
  ['ssn text', 'ssn', rule('redact')],
  ['ssn text', 'ssn', rule('partial', 0, 4)],
  ['full_name text', 'full_name', rule('partial', 2, 2)],
  ['note varchar(40)', 'note_vc', rule('partial', 1, 0)],
  ['mrn text', 'mrn', rule('tokenize')],
  ['id int4', 'id', rule('tokenize')],
  ['meta jsonb', 'meta', rule('tokenize')],
  ['meta jsonb', 'meta', rule('partial', 0, 2)],
  ['date_of_birth date', 'date_of_birth', rule('year_only')],
  ['admitted timestamptz', 'admitted', rule('year_only')],
  ['birth_text text', 'birth_text', rule('year_only')],
  ['id int4', 'id', rule('year_only')],
];

export interface SourceMaskingFigure {
  what: string;
  rawMs: number;
  maskedMs: number;
}

async function executionMs(client: pg.Client, select: string): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const r = await client.query<{ 'QUERY PLAN': [{ 'Execution Time': number }] }>(`EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${select}`);
    best = Math.min(best, r.rows[0]!['QUERY PLAN'][0]['Execution Time']);
  }
  return best;
}

/** Times each case and the whole-row case on `client`'s database (creates table bench_source). */
export async function benchSourceMasking(client: pg.Client, rows = ROWS): Promise<SourceMaskingFigure[]> {
  await client.query(SETUP(rows));
  await client.query('VACUUM ANALYZE bench_source');
  await client.query('SET max_parallel_workers_per_gather = 0; SET jit = off');
  const key = sqlTokenKey(randomBytes(32));
  const out: SourceMaskingFigure[] = [];
  for (const [what, col, r] of CASES) {
    const e = maskExpression(r, `"${col}"`, TYPES[col]!, key);
    const rawMs = await executionMs(client, `SELECT "${col}" FROM bench_source`);
    const maskedMs = await executionMs(client, `SELECT ${e.sql} FROM bench_source`);
    const name = r.strategy === 'partial' ? `partial(${r.keepFirst},${r.keepLast})` : r.strategy;
    out.push({ what: `${what} ${name}`, rawMs, maskedMs });
  }
  // A patients-like row as the rewriter would mask it: ssn partial, mrn tokenize, name redact, dob year_only.
  const row: [string, ColumnRule][] = [['id', rule('null')], ['mrn', rule('tokenize')], ['full_name', rule('redact')], ['ssn', rule('partial', 0, 4)], ['date_of_birth', rule('year_only')]];
  const masked = row.map(([c, r]) => (c === 'id' ? '"id"' : `${maskExpression(r, `"${c}"`, TYPES[c]!, key).sql} AS "${c}"`));
  out.push({
    what: 'row: id, mrn tokenize, full_name redact, ssn partial, date_of_birth year_only',
    rawMs: await executionMs(client, `SELECT ${row.map(([c]) => `"${c}"`).join(', ')} FROM bench_source`),
    maskedMs: await executionMs(client, `SELECT ${masked.join(', ')} FROM bench_source`),
  });
  await client.query('DROP TABLE bench_source');
  return out;
}

export function printSourceMasking(figures: readonly SourceMaskingFigure[], rows = ROWS): void {
  console.log(`masking at the source: server-side execution of SELECT over ${rows.toLocaleString('en-US')} rows (best of ${RUNS})`);
  for (const f of figures) {
    console.log(`  ${f.what.padEnd(48)} raw ${f.rawMs.toFixed(0).padStart(6)} ms   masked ${f.maskedMs.toFixed(0).padStart(6)} ms   ${(f.maskedMs / f.rawMs).toFixed(1).padStart(5)}x   ${((f.maskedMs - f.rawMs) * 1000 / rows).toFixed(2)} us/row`);
  }
}

async function main(): Promise<void> {
  const url = process.env['BENCH_PG_URL'];
  let stop = async (): Promise<void> => {};
  let config: pg.ClientConfig;
  if (url !== undefined) config = { connectionString: url };
  else {
    const { startTestPostgres } = await import('../test/support/postgres.js');
    const db = await startTestPostgres();
    stop = db.stop;
    config = { host: db.info.host, port: db.info.port, user: db.info.superuser.user, password: db.info.superuser.password, database: db.info.database, ssl: false };
  }
  const client = new pg.Client(config);
  await client.connect();
  try {
    printSourceMasking(await benchSourceMasking(client));
  } finally {
    await client.end();
    await stop();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
