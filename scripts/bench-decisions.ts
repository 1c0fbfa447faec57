// `npm run bench`, first section: what deciding one statement costs (classify + decide under the reference policy's rules) for a cache miss, an exact-text hit, a shape hit, and the session's StatementGate end to end.
import { ClassifierCache, initClassifier, type Classification } from '../src/policy/classify/index.js';
import { decideStatements, type Decision, type DecisionInput } from '../src/policy/decide.js';
import { parsePolicyFile } from '../src/policy/file.js';
import { ShapeClassifierCache } from '../src/policy/shape-cache.js';
import { StatementGate } from '../src/server/gate.js';
import { SPEC_RULES } from '../test/support/spec-policy.js';
import { CatalogSnapshot, type Relation } from '../src/server/catalog.js';
import { createSourceMasking } from '../src/masking/source/index.js';
import type { MaskingConfig } from '../src/masking/config.js';

const RUNS = 3;
const MISS_ITERATIONS = 5_000;
const HIT_ITERATIONS = 300_000;
/** Distinct literals cycled through by the hit cases (texts are built before timing starts). */
const TEXTS = 4_096;

// The reference example policy's rules (test/support/spec-policy.ts), so decisions walk real rules rather than an empty list.
const POLICY = parsePolicyFile(`version: 1
connections:
  ehr: { upstream: "postgres://phigate_svc@db.internal:5432/ehr", allow_groups: [engineering] }
${SPEC_RULES}`, 'bench-policy.yaml');

const INPUT: DecisionInput = {
  rules: POLICY.rules,
  defaultAction: POLICY.default,
  connection: 'ehr',
  identity: { name: 'alice', subject: 'alice', groups: ['engineering'], kind: 'human' },
  maskedColumns: new Set(['patients.ssn', 'patients.mrn', 'patients.full_name', 'patients.date_of_birth']),
};

const pgbenchSelect = (aid: number): string => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid}`;
const joinWithCte = (id: number): string =>
  `WITH recent AS (SELECT patient_id, max(visited_at) AS last FROM visits WHERE clinic_id = ${id % 97} GROUP BY patient_id) ` +
  `SELECT p.id, p.full_name, r.last, a.slot FROM patients p JOIN recent r ON r.patient_id = p.id ` +
  `LEFT JOIN appointments a ON a.patient_id = p.id AND a.slot > now() WHERE p.id = ${id} ORDER BY r.last DESC LIMIT 20`;

interface Case {
  name: string;
  /** Key in the printed summary line. */
  key: string;
  iterations: number;
  /** Runs `n` statements and returns something derived from them, so the work cannot be skipped. */
  run: (n: number) => number;
}

function decide(c: Classification): Decision | undefined {
  return c.ok ? decideStatements(c.statements, INPUT) : undefined;
}

/** Sums actions as numbers: a cheap use of every decision. */
function weight(d: { action: string } | undefined): number {
  return d === undefined ? 3 : d.action === 'allow' ? 0 : d.action === 'approve' ? 1 : 2;
}

/** Nanoseconds of the last run (set by each case, so text generation stays outside the timing). */
let elapsed = 0n;

function missCase(name: string, key: string, make: (i: number) => string): Case {
  // Every run needs texts no cache has seen: a fresh cache per run and texts unique across runs.
  let round = 0;
  return {
    name,
    key,
    iterations: MISS_ITERATIONS,
    run: (n) => {
      const base = 1_000_000 * ++round;
      const texts = Array.from({ length: n }, (_, i) => make(base + i));
      const cache = new ClassifierCache();
      let sink = 0;
      const t0 = process.hrtime.bigint();
      for (const sql of texts) sink += weight(decide(cache.classify(sql)));
      elapsed = process.hrtime.bigint() - t0;
      return sink;
    },
  };
}

function timed(body: (n: number) => number): (n: number) => number {
  return (n) => {
    const t0 = process.hrtime.bigint();
    const sink = body(n);
    elapsed = process.hrtime.bigint() - t0;
    return sink;
  };
}

/** A catalog snapshot of the example policy's tables, without a database: what the rewrite reads. */
function syntheticSnapshot(): CatalogSnapshot {
  let oid = 20_000;
  const rel = (name: string, cols: [string, string, number][]): Relation => ({
    oid: oid++, schema: 'public', name, kind: 'r', columns: cols.map((c) => c[0]), byAttnum: new Map(cols.map((c, i) => [i + 1, c[0]])),
    typedColumns: cols.map(([n, sql, typeOid], i) => ({ name: n, attnum: i + 1, type: { oid: typeOid, typmod: -1, sql, baseOid: typeOid, baseTypmod: -1, baseSql: sql } })),
    parents: [], ruleTargets: [], insteadTriggers: false, system: false,
  });
  return new CatalogSnapshot([
    rel('patients', [['id', 'integer', 23], ['mrn', 'text', 25], ['full_name', 'text', 25], ['ssn', 'text', 25], ['date_of_birth', 'date', 1082], ['email', 'text', 25], ['city', 'text', 25]]),
    rel('visits', [['id', 'integer', 23], ['patient_id', 'integer', 23], ['clinic_id', 'integer', 23], ['visited_at', 'timestamp with time zone', 1184]]),
    rel('appointments', [['id', 'integer', 23], ['patient_id', 'integer', 23], ['slot', 'timestamp with time zone', 1184]]),
    rel('pgbench_accounts', [['aid', 'integer', 23], ['bid', 'integer', 23], ['abalance', 'integer', 23], ['filler', 'character(84)', 1042]]),
  ], Date.now());
}

const SOURCE_MASKING: MaskingConfig = {
  columns: [
    { table: 'patients', column: 'ssn', strategy: 'partial', keepFirst: 0, keepLast: 4, placeholder: '***' },
    { table: 'patients', column: 'mrn', strategy: 'tokenize', keepFirst: 0, keepLast: 0, placeholder: '***' },
    { table: 'patients', column: 'full_name', strategy: 'redact', keepFirst: 0, keepLast: 0, placeholder: '***' },
    { table: 'patients', column: 'date_of_birth', strategy: 'year_only', keepFirst: 0, keepLast: 0, placeholder: '***' },
  ],
  detectors: [],
  unmaskedGroups: [],
};

function cases(): Case[] {
  const literals = Array.from({ length: TEXTS }, (_, i) => pgbenchSelect(1 + ((i * 7919) % 1_000_000)));

  const exact = new ClassifierCache();
  const fixed = pgbenchSelect(42);
  const classified = exact.classify(fixed);

  const shapes = new ShapeClassifierCache();
  shapes.classify(literals[0]!);

  const gate = new StatementGate({
    policy: () => POLICY, classifier: new ShapeClassifierCache(), connection: INPUT.connection,
    identity: INPUT.identity, maskedColumns: INPUT.maskedColumns,
  });
  gate.onQuery(literals[0]!);

  // Masking at the source for a masked reader: the join touches patients, so it is rewritten.
  const snapshot = syntheticSnapshot();
  const source = createSourceMasking(SOURCE_MASKING, Buffer.alloc(32, 7), new Set()).masking;
  const joins = Array.from({ length: TEXTS }, (_, i) => joinWithCte(1 + i));
  const maskedGate = new StatementGate({
    policy: () => POLICY, classifier: new ShapeClassifierCache(), connection: INPUT.connection,
    identity: INPUT.identity, maskedColumns: INPUT.maskedColumns, maskedReader: true,
  });
  if (source.rewrite(joins[0]!, snapshot).kind !== 'rewritten') throw new Error('bench: the join was not rewritten at the source');
  maskedGate.onQuery(joins[0]!);
  source.rewrite(pgbenchSelect(1), snapshot);

  return [
    missCase('miss: pgbench SELECT, unique text', 'miss_us', pgbenchSelect),
    missCase(`miss: join + CTE (${joinWithCte(1).length} chars), unique text`, 'miss_join_us', joinWithCte),
    {
      name: 'exact-text hit: same pgbench SELECT',
      key: 'exact_hit_us',
      iterations: HIT_ITERATIONS,
      run: timed((n) => {
        let sink = 0;
        for (let i = 0; i < n; i++) sink += weight(decide(exact.classify(fixed)));
        return sink;
      }),
    },
    {
      name: 'decideStatements alone (classified SELECT)',
      key: 'decide_us',
      iterations: HIT_ITERATIONS,
      run: timed((n) => {
        let sink = 0;
        for (let i = 0; i < n; i++) sink += weight(decide(classified));
        return sink;
      }),
    },
    {
      name: 'shape hit: pgbench SELECT, other literal',
      key: 'shape_hit_us',
      iterations: HIT_ITERATIONS,
      run: timed((n) => {
        let sink = 0;
        for (let i = 0; i < n; i++) sink += weight(decide(shapes.classify(literals[i & (TEXTS - 1)]!)));
        return sink;
      }),
    },
    {
      name: 'StatementGate.onQuery: pgbench SELECT',
      key: 'gate_us',
      iterations: HIT_ITERATIONS,
      run: timed((n) => {
        let sink = 0;
        for (let i = 0; i < n; i++) sink += weight(gate.onQuery(literals[i & (TEXTS - 1)]!));
        return sink;
      }),
    },
    {
      name: 'source rewrite alone: join + CTE, cached shape',
      key: 'rewrite_us',
      iterations: HIT_ITERATIONS / 3,
      run: timed((n) => {
        let sink = 0;
        for (let i = 0; i < n; i++) sink += source.rewrite(joins[i & (TEXTS - 1)]!, snapshot).kind.length;
        return sink;
      }),
    },
    {
      name: 'decision + rewrite: masked reader, join + CTE',
      key: 'masked_gate_us',
      iterations: HIT_ITERATIONS / 3,
      run: timed((n) => {
        let sink = 0;
        for (let i = 0; i < n; i++) {
          const sql = joins[i & (TEXTS - 1)]!;
          sink += weight(maskedGate.onQuery(sql)) + source.rewrite(sql, snapshot).kind.length;
        }
        return sink;
      }),
    },
    {
      name: 'decision + rewrite: masked reader, pgbench SELECT',
      key: 'masked_gate_select_us',
      iterations: HIT_ITERATIONS / 3,
      run: timed((n) => {
        let sink = 0;
        for (let i = 0; i < n; i++) {
          const sql = literals[i & (TEXTS - 1)]!;
          sink += weight(maskedGate.onQuery(sql)) + source.rewrite(sql, snapshot).kind.length;
        }
        return sink;
      }),
    },
  ];
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Prints the decision-cost table; returns microseconds per statement by summary key. */
export async function benchDecisions(out: NodeJS.WritableStream = process.stdout): Promise<Record<string, number>> {
  await initClassifier();
  const all = cases();
  const summary: Record<string, number> = {};
  const rows: string[] = [];
  let sink = 0;
  for (const c of all) {
    sink += c.run(Math.max(1, Math.floor(c.iterations / 10))); // warm-up: JIT, caches
    let best = Infinity;
    for (let r = 0; r < RUNS; r++) {
      sink += c.run(c.iterations);
      best = Math.min(best, Number(elapsed) / 1_000 / c.iterations);
    }
    summary[c.key] = best;
    rows.push(`${c.name.padEnd(44)}  ${fmt(c.iterations).padStart(10)}  ${fmt(best, 2).padStart(8)}  ${fmt(1_000_000 / best).padStart(10)}`);
  }
  out.write(`Decision cost per statement (classify + decide, reference policy rules; best of ${RUNS} runs; ${process.version})\n`);
  out.write(`${'case'.padEnd(44)}  ${'iterations'.padStart(10)}  ${'us/stmt'.padStart(8)}  ${'ops/s'.padStart(10)}\n`);
  for (const r of rows) out.write(`${r}\n`);
  const rounded = Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, Number(v.toFixed(3))]));
  out.write(`decision summary ${JSON.stringify(rounded)}${sink < 0 ? ' ' : ''}\n\n`); // `sink` keeps the work observable
  return summary;
}
