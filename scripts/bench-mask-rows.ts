// Micro benchmark of the row path: a patients-like result (4 masked columns, detectors on the other text columns)
// pushed through applyToDataRow in this process, for `npm run bench` (masking section) and the masking tests.
import { dataRow, decodeRowDescription, rowDescription, type FieldDescription } from '../src/pg/index.js';
import type { MaskingConfig } from '../src/masking/config.js';
import { OID } from '../src/masking/pgtypes.js';
import { planColumns, type MaskPlan } from '../src/masking/plan.js';
import { applyToDataRow } from '../src/masking/row.js';

export interface MaskBenchResult {
  rows: number;
  /** Wall-clock time of the masked run. */
  seconds: number;
  /** Rows per second of wall-clock time. */
  rowsPerSecond: number;
  /** Rows per second of this process's CPU time: steadier than wall time on a shared machine. */
  rowsPerCpuSecond: number;
  /** CPU time per row, nanoseconds. */
  cpuNsPerRow: number;
  /** Mean DataRow body size in and out, bytes. */
  bytesPerRowIn: number;
  bytesPerRowOut: number;
  /** Same rows with no masked columns, detectors only (the cost every unmasked text column pays), per CPU second. */
  detectOnlyRowsPerSecond: number;
}

const PATIENTS_OID = 90_001;
const COLUMNS: [string, number][] = [
  ['id', OID.int4],
  ['mrn', OID.text],
  ['ssn', OID.text],
  ['full_name', OID.text],
  ['date_of_birth', OID.date],
  ['email', OID.text],
  ['phone', OID.text],
  ['city', OID.text],
  ['created_at', OID.timestamptz],
];

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Tim'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Perlman', 'Berners-Lee'];
const CITIES = ['Springfield', 'Riverside', 'Fairview', 'Madison', 'Georgetown', 'Salem', 'Franklin', 'Clinton'];

function syntheticRow(i: number): (string | null)[] {
  const area = 100 + (i % 565);
  const ssn = `${area}-${String(10 + (i % 89)).padStart(2, '0')}-${String(1000 + (i % 8999)).padStart(4, '0')}`;
  const first = FIRST[i % FIRST.length] as string;
  const last = LAST[(i * 7) % LAST.length] as string;
  const y = 1930 + (i % 80);
  const m = String(1 + (i % 12)).padStart(2, '0');
  const d = String(1 + (i % 28)).padStart(2, '0');
  return [
    String(i + 1),
    `MRN-${String(10_000_000 + i).padStart(8, '0')}`,
    ssn,
    `${first} ${last}`,
    `${y}-${m}-${d}`,
    // Every other row has an email (a detector hit), the rest a note without one.
    i % 2 === 0 ? `${first.toLowerCase()}.${last.toLowerCase()}${i}@example.org` : 'no email on file',
    i % 3 === 0 ? null : `(${200 + (i % 700)}) 555-${String(1000 + (i % 8999)).padStart(4, '0')}`,
    CITIES[i % CITIES.length] as string,
    '2024-05-01 10:23:45.123456+00',
  ];
}

export const BENCH_POLICY: MaskingConfig = {
  columns: [
    { table: 'patients', column: 'mrn', strategy: 'tokenize', keepFirst: 0, keepLast: 0, placeholder: '***' },
    { table: 'patients', column: 'ssn', strategy: 'partial', keepFirst: 0, keepLast: 4, placeholder: '***' },
    { table: 'patients', column: 'full_name', strategy: 'redact', keepFirst: 0, keepLast: 0, placeholder: '***' },
    { table: 'patients', column: 'date_of_birth', strategy: 'year_only', keepFirst: 0, keepLast: 0, placeholder: '***' },
  ],
  detectors: [
    { kind: 'builtin', name: 'us_ssn' },
    { kind: 'builtin', name: 'email' },
    { kind: 'builtin', name: 'phone' },
  ],
  unmaskedGroups: [],
};

function fields(): FieldDescription[] {
  const raw = rowDescription(COLUMNS.map(([name, typeOid], i) => ({ name, tableOid: PATIENTS_OID, columnAttr: i + 1, typeOid, typeSize: -1, typeModifier: -1, format: 0 })));
  const decoded = decodeRowDescription(raw.subarray(5));
  if (decoded instanceof Error) throw decoded;
  return decoded;
}

function time(bodies: Buffer[], n: number, plan: MaskPlan): { seconds: number; cpuSeconds: number; bytesOut: number } {
  let bytesOut = 0;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const body = bodies[i % bodies.length] as Buffer;
    const out = applyToDataRow(body, plan);
    bytesOut += out === null ? body.length : out.length - 5;
  }
  const used = process.cpuUsage(cpu);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, cpuSeconds: (used.user + used.system) / 1e6, bytesOut };
}

/** Masks `rows` DataRows (cycling over 4,096 distinct synthetic patients) and reports the rate. */
export function benchMaskRows(rows = 1_000_000): MaskBenchResult {
  const f = fields();
  const resolve = (oid: number, attnum: number): { schema: string; table: string; column: string; relkind: string } | undefined =>
    oid === PATIENTS_OID ? { schema: 'public', table: 'patients', column: (COLUMNS[attnum - 1] as [string, number])[0], relkind: 'r' } : undefined;
  const tokenKey = Buffer.alloc(32, 7);
  const plan = planColumns(f, undefined, resolve, BENCH_POLICY, { unmasked: false, tokenKey });
  const detectOnly = planColumns(f, undefined, resolve, { ...BENCH_POLICY, columns: [] }, { unmasked: false, tokenKey });
  const bodies = Array.from({ length: 4096 }, (_, i) => dataRow(syntheticRow(i)).subarray(5));
  const bytesIn = bodies.reduce((s, b) => s + b.length, 0) / bodies.length;
  // Warm up the JIT on a slice first so the timing is of steady state.
  time(bodies, Math.min(rows, 20_000), plan);
  const masked = time(bodies, rows, plan);
  const detect = time(bodies, rows, detectOnly);
  return {
    rows,
    seconds: masked.seconds,
    rowsPerSecond: Math.round(rows / masked.seconds),
    rowsPerCpuSecond: Math.round(rows / masked.cpuSeconds),
    cpuNsPerRow: Math.round((masked.cpuSeconds * 1e9) / rows),
    bytesPerRowIn: Math.round(bytesIn),
    bytesPerRowOut: Math.round(masked.bytesOut / rows),
    detectOnlyRowsPerSecond: Math.round(rows / detect.cpuSeconds),
  };
}
