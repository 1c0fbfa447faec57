// Evidence-store measurements for `npm run bench` and the tests: append cost, sustained records per
// second with group commit (fsync) on, and search latency over a generated 1,000,000-record log.
import type { KeyObject } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GENESIS_PREV, canonicalJson, canonicalRecord, sha256Hex } from '../src/audit/canonical.js';
import { publicKeyPem, signCheckpoint } from '../src/audit/keys.js';
import type { AuditEvent, StatementDecision } from '../src/audit/events.js';
import { AuditLog, PUBLIC_KEY_FILE } from '../src/audit/log.js';
import { searchAudit, type SearchFilters } from '../src/audit/search.js';
import { CHECKPOINTS_FILE, LOG_FILE, loadIndex } from '../src/audit/search-index.js';

const TABLES = ['patients', 'visits', 'prescriptions', 'claims', 'providers', 'labs', 'allergies', 'immunizations', 'notes', 'orders',
  'encounters', 'payers', 'devices', 'imaging', 'referrals', 'vitals', 'problems', 'procedures', 'insurance', 'audit_trail'];
const CONNECTIONS = ['ehr', 'billing', 'research', 'warehouse', 'lab'];
const DECISIONS: StatementDecision[] = ['allow', 'allow', 'allow', 'allow', 'allow', 'allow', 'block', 'approved', 'denied', 'timeout'];
const SQL = [
  'SELECT id, full_name, ssn FROM {t} WHERE id = $1',
  'SELECT count(*) FROM {t} WHERE created_at > $1',
  'UPDATE {t} SET status = $1 WHERE id = $2',
  'DELETE FROM {t} WHERE id = $1',
  'SELECT a.id, b.note FROM {t} a JOIN visits b ON b.patient_id = a.id WHERE a.mrn = $1',
  'INSERT INTO {t} (patient_id, code, value) VALUES ($1, $2, $3)',
];
const POLICY = 'sha256:4f1c2e0c6d9a8b7f4f1c2e0c6d9a8b7f4f1c2e0c6d9a8b7f4f1c2e0c6d9a8b7f';

/** murmur3's finalizer: independent-looking values per (i, k), reproducible. */
function mix(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A statement as the gateway records it; `i` picks the values deterministically. */
export function syntheticStatement(i: number, users = 1000): AuditEvent {
  const h = (k: number): number => mix(i * 16 + k);
  const t = TABLES[h(1) % TABLES.length]!;
  return {
    type: 'statement',
    session: `sess-${Math.floor(i / 40).toString(36)}`,
    user: `user${h(2) % users}`,
    connection: CONNECTIONS[h(3) % CONNECTIONS.length]!,
    sql: SQL[h(4) % SQL.length]!.replace('{t}', t),
    kinds: ['select'],
    tables: h(5) % 4 === 0 ? [t, 'visits'] : [t],
    decision: DECISIONS[h(6) % DECISIONS.length]!,
    rule: 'phi-reads',
    policy: POLICY,
    duration_ms: h(7) % 40,
    rows: h(8) % 200,
    masked: ['patients.ssn'],
  };
}

/**
 * Writes a valid chained log of `n` records spread evenly over `spanMs` ending now (what a busy
 * gateway accumulates), without going through append: generating a million records takes seconds.
 * `extra(i)` may replace record i's event (to plant rare records a test then searches for).
 */
export function generateSyntheticLog(
  auditDir: string, n: number,
  opts: { spanMs?: number; extra?: (i: number) => AuditEvent | undefined; signingKey?: KeyObject; checkpointEvery?: number } = {},
): { first: number; last: number } {
  mkdirSync(auditDir, { recursive: true, mode: 0o700 });
  const span = opts.spanMs ?? 30 * 86_400_000;
  const last = Date.now();
  const first = last - span;
  const fd = openSync(join(auditDir, LOG_FILE), 'w', 0o600);
  const key = opts.signingKey;
  const every = opts.checkpointEvery ?? 1000;
  const cps: string[] = [];
  try {
    let prev = GENESIS_PREV;
    let chunk: string[] = [];
    for (let i = 0; i < n; i++) {
      const at = new Date(first + Math.floor((span * i) / Math.max(1, n - 1))).toISOString();
      const line = canonicalRecord((opts.extra?.(i) ?? syntheticStatement(i)) as unknown as Record<string, unknown>, i, at, prev);
      prev = sha256Hex(line);
      if (key && (i % every === every - 1 || i === n - 1)) cps.push(canonicalJson(signCheckpoint({ seq: i, hash: prev, at }, key)));
      chunk.push(line);
      if (chunk.length === 10_000) {
        writeSync(fd, `${chunk.join('\n')}\n`);
        chunk = [];
      }
    }
    if (chunk.length > 0) writeSync(fd, `${chunk.join('\n')}\n`);
  } finally {
    closeSync(fd);
  }
  if (key) {
    writeFileSync(join(auditDir, CHECKPOINTS_FILE), cps.length ? `${cps.join('\n')}\n` : '', { mode: 0o600 });
    writeFileSync(join(auditDir, PUBLIC_KEY_FILE), publicKeyPem(key), { mode: 0o644 });
  }
  return { first, last };
}

export interface AppendBench {
  usPerAppend: number;
  recordsPerSecond: number;
  fsyncs: number;
  seconds: number;
}

/** Append cost alone, then a sustained load with the event loop turning (fsyncs and checkpoints running). */
export async function benchAppends(dir: string, opts: { seconds?: number; signingKey?: AuditLogOptionsKey } = {}): Promise<AppendBench> {
  const log = AuditLog.open(dir, { signingKey: opts.signingKey });
  try {
    const events = Array.from({ length: 1000 }, (_, i) => syntheticStatement(i));
    for (let i = 0; i < 5000; i++) log.append(events[i % 1000]!);
    const n = 50_000;
    let t0 = performance.now();
    for (let i = 0; i < n; i++) log.append(events[i % 1000]!);
    const usPerAppend = ((performance.now() - t0) * 1000) / n;
    await log.synced();
    const before = log.stats();
    t0 = performance.now();
    let count = 0;
    const ms = (opts.seconds ?? 2) * 1000;
    while (performance.now() - t0 < ms) {
      for (let i = 0; i < 100; i++) log.append(events[count++ % 1000]!);
      await new Promise((r) => setImmediate(r));
    }
    await log.synced();
    const seconds = (performance.now() - t0) / 1000;
    return { usPerAppend, recordsPerSecond: count / seconds, fsyncs: log.stats().fsyncs - before.fsyncs, seconds };
  } finally {
    await log.close();
  }
}

type AuditLogOptionsKey = NonNullable<Parameters<typeof AuditLog.open>[1]>['signingKey'];

export interface SearchTiming {
  name: string;
  filters: SearchFilters;
  ms: number;
  results: number;
  read: number;
}

/** The searches the bench and the tests time: selective, unselective, SQL, time ranges. */
export function standardSearches(range: { first: number; last: number }): { name: string; filters: SearchFilters }[] {
  const day = 86_400_000;
  return [
    { name: 'user (100 newest)', filters: { user: 'user7' } },
    { name: 'rare user (full scan)', filters: { user: 'rare-user' } },
    { name: 'table + decision', filters: { table: 'patients', decision: 'block' } },
    { name: 'connection + 1-day range', filters: { connection: 'research', since: range.first + 10 * day, until: range.first + 11 * day } },
    { name: 'SQL substring', filters: { sql: 'join visits' } },
    { name: 'rare SQL substring (full scan)', filters: { sql: 'pg_sleep' } },
    { name: 'user + table + SQL + 7 days', filters: { user: 'user42', table: 'visits', sql: 'select', since: range.last - 7 * day } },
    { name: 'nothing matches', filters: { user: 'user1', decision: 'timeout', table: 'imaging', sql: 'delete', since: range.last - day } },
  ];
}

export function timeSearches(auditDir: string, searches: { name: string; filters: SearchFilters }[], opts: { warm?: boolean } = {}): SearchTiming[] {
  const idx = opts.warm ? loadIndex(auditDir) : undefined;
  return searches.map(({ name, filters }) => {
    const t0 = performance.now();
    const r = searchAudit(auditDir, filters, idx);
    return { name, filters, ms: performance.now() - t0, results: r.records.length, read: r.read };
  });
}

/** Called by `npm run bench`: prints audit records/s with sync on and search latency over 1M records. */
export async function runAuditBench(print: (line: string) => void = (l) => process.stdout.write(`${l}\n`), n = 1_000_000): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'phigate-audit-bench-'));
  try {
    const { generateKeyPairSync } = await import('node:crypto');
    const a = await benchAppends(join(dir, 'appends'), { signingKey: generateKeyPairSync('ed25519').privateKey });
    print(`audit append: ${a.usPerAppend.toFixed(1)} us/record (canonical JSON + SHA-256 + write to the OS)`);
    print(`audit log, group commit on: ${Math.round(a.recordsPerSecond).toLocaleString('en-US')} records/s sustained (${a.fsyncs} fsyncs in ${a.seconds.toFixed(1)} s)`);
    const auditDir = join(dir, 'big');
    let t0 = performance.now();
    const range = generateSyntheticLog(auditDir, n, { extra: plantRare(n) });
    print(`generated ${n.toLocaleString('en-US')} records in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    t0 = performance.now();
    const log = AuditLog.open(auditDir);
    await log.close();
    print(`built the search index in ${((performance.now() - t0) / 1000).toFixed(1)} s (once; afterwards it is kept up to date at each group commit)`);
    for (const warm of [false, true]) {
      print(warm ? 'search, index already loaded (gateway API):' : 'search, cold (offline CLI: loads the index each time):');
      for (const t of timeSearches(auditDir, standardSearches(range), { warm })) {
        print(`  ${t.name.padEnd(34)} ${t.ms.toFixed(0).padStart(5)} ms  ${String(t.results).padStart(3)} results, ${t.read} records read`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Rare records for full-scan searches: a user seen three times, and a statement text seen twice. */
export function plantRare(n: number): (i: number) => AuditEvent | undefined {
  const rareUser = new Set([Math.floor(n * 0.1), Math.floor(n * 0.5), Math.floor(n * 0.9)]);
  const rareSql = new Set([Math.floor(n * 0.2), Math.floor(n * 0.7)]);
  return (i) => {
    if (rareUser.has(i)) return { ...syntheticStatement(i), user: 'rare-user' } as AuditEvent;
    if (rareSql.has(i)) return { ...syntheticStatement(i), sql: 'SELECT pg_sleep($1)' } as AuditEvent;
    return undefined;
  };
}
