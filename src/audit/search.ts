// `phigate audit search` and `phigate sessions`: newest-first filtering over the log through its
// sidecar index (entries by seq, dictionary ids, table Bloom bits, lower-cased SQL), confirming every
// hit against the record itself, so the index can only make a search faster, never wrong.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import {
  ENTRY_WORDS, OTHER_CODE, decisionCode, sqlKey, tableBits, tableMatches, typeCode,
} from './index-format.js';
import { preadSync } from './lines.js';
import { LOG_FILE, loadIndex, parseRecordLine, type LoadedIndex } from './search-index.js';
import type { RecordingSeal, StoredRecord } from './events.js';

export interface SearchFilters {
  /** Identity name, exactly. */
  user?: string;
  connection?: string;
  /** A table the record names; `patients` also finds `public.patients`. */
  table?: string;
  /** allow, block, approve, approved, denied, timeout, withdrawn, cancelled, error. */
  decision?: string;
  /** Case-insensitive substring of the (redacted) statement text. */
  sql?: string;
  /** Inclusive lower bound, ms since the epoch. */
  since?: number;
  /** Inclusive upper bound, ms since the epoch. */
  until?: number;
  /** Record types (default: all). */
  types?: readonly string[];
  session?: string;
  /** Most records returned (default 100, at most 10,000). */
  limit?: number;
}

export interface SearchResult {
  /** Newest first. */
  records: StoredRecord[];
  /** More records match beyond `limit`. */
  more: boolean;
  /** Index entries that passed the index's filters and whose record was read. */
  read: number;
  /** Records in the log when searched. */
  total: number;
  elapsedMs: number;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;

/** The filter values an index entry can be tested against without reading the record. */
interface EntryTest {
  user?: number;
  connection?: number;
  session?: number;
  bloom?: [number, number];
  types?: Set<number>;
  decision?: number;
  since?: number;
  until?: number;
}

/** Searches the log in `auditDir`; pass `index` to reuse one already loaded. */
export function searchAudit(auditDir: string, f: SearchFilters, index?: LoadedIndex): SearchResult {
  const started = performance.now();
  const idx = index ?? loadIndex(auditDir);
  const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(f.limit ?? DEFAULT_LIMIT)));
  const empty = (): SearchResult => ({ records: [], more: false, read: 0, total: idx.count, elapsedMs: performance.now() - started });
  const test: EntryTest = {};
  for (const [field, kind] of [['user', 'u'], ['connection', 'c'], ['session', 's']] as const) {
    const v = f[field];
    if (v === undefined) continue;
    const id = idx.dict.ids[kind].get(v);
    if (id === undefined) return empty();
    test[field] = id;
  }
  if (f.table !== undefined) test.bloom = tableBits(f.table);
  if (f.types && f.types.length > 0) test.types = new Set([...f.types.map(typeCode), OTHER_CODE]);
  if (f.decision !== undefined) test.decision = decisionCode(f.decision);
  if (f.since !== undefined) test.since = f.since;
  if (f.until !== undefined) test.until = f.until;

  const fd = openSync(join(auditDir, LOG_FILE), 'r');
  const records: StoredRecord[] = [];
  let read = 0;
  let more = false;
  try {
    const consider = (seq: number): boolean => {
      if (seq >= idx.count || !entryPasses(idx, seq, test)) return false;
      read++;
      const w = seq * ENTRY_WORDS;
      const line = preadSync(fd, idx.floats[seq * 6]!, idx.words[w + 4]!);
      const rec = parseRecordLine(line.subarray(0, line.length - 1));
      if (!rec || rec['seq'] !== seq) throw new StaleIndex();
      if (!recordMatches(rec, f)) return false;
      if (records.length === limit) {
        more = true;
        return true;
      }
      records.push(rec as StoredRecord);
      return false;
    };
    const [lo, hi] = seqRange(idx, f.since, f.until);
    if (f.sql !== undefined && f.sql !== '') {
      const needle = sqlKey(f.sql);
      // The unindexed tail first (newest), then sql.txt backwards.
      for (let i = idx.tailSql.length - 1; i >= 0; i--) {
        const t = idx.tailSql[i]!;
        if (t.seq > hi || !t.text.includes(needle)) continue;
        if (t.seq < lo || consider(t.seq)) break;
      }
      if (!more && lo < idx.persisted) {
        const sql = idx.sql();
        forEachSqlHit(sql, Buffer.from(needle), sqlLineEnd(sql, Math.min(hi, idx.persisted - 1)), (seq) => seq < lo || consider(seq));
      }
    } else {
      for (let seq = hi; seq >= lo; seq--) if (consider(seq)) break;
    }
  } catch (err) {
    if (!(err instanceof StaleIndex) || index?.rebuilt) throw err;
    // The index no longer describes this log (replaced or edited files): search the log itself.
    closeSync(fd);
    return searchAudit(auditDir, f, rebuildInMemory(auditDir));
  } finally {
    try {
      closeSync(fd);
    } catch {
      // closed above before the retry
    }
  }
  return { records, more, read, total: idx.count, elapsedMs: performance.now() - started };
}

class StaleIndex extends Error {}

function rebuildInMemory(auditDir: string): LoadedIndex {
  // loadIndex with its index files ignored: everything from the log.
  return { ...loadIndex(auditDir, { ignoreFiles: true }), rebuilt: true };
}

function entryPasses(idx: LoadedIndex, seq: number, t: EntryTest): boolean {
  const w = seq * ENTRY_WORDS;
  const words = idx.words;
  if (t.user !== undefined && words[w + 5] !== t.user) return false;
  if (t.connection !== undefined && words[w + 6] !== t.connection) return false;
  if (t.session !== undefined && words[w + 7] !== t.session) return false;
  if (t.bloom && ((words[w + 8]! & t.bloom[0]) >>> 0 !== t.bloom[0] || (words[w + 9]! & t.bloom[1]) >>> 0 !== t.bloom[1])) return false;
  const code = words[w + 10]!;
  if (t.types && !t.types.has(code & 0xff)) return false;
  if (t.decision !== undefined) {
    const d = (code >>> 8) & 0xff;
    if (d !== t.decision && d !== OTHER_CODE && t.decision !== OTHER_CODE) return false;
  }
  if (t.since !== undefined || t.until !== undefined) {
    const at = idx.floats[seq * 6 + 1]!;
    if (t.since !== undefined && at < t.since) return false;
    if (t.until !== undefined && at > t.until) return false;
  }
  return true;
}

/** The record itself decides: the index only narrowed the candidates. */
export function recordMatches(rec: Record<string, unknown>, f: SearchFilters): boolean {
  if (f.user !== undefined && rec['user'] !== f.user) return false;
  if (f.connection !== undefined && rec['connection'] !== f.connection) return false;
  if (f.session !== undefined && rec['session'] !== f.session) return false;
  if (f.types && f.types.length > 0 && !f.types.includes(String(rec['type']))) return false;
  if (f.decision !== undefined) {
    const d = rec['decision'] ?? (rec['type'] === 'approval.decided' || rec['type'] === 'privileged' ? rec['outcome'] : undefined);
    if (d !== f.decision) return false;
  }
  if (f.table !== undefined) {
    const tables = Array.isArray(rec['tables']) ? (rec['tables'] as unknown[]) : [];
    if (!tables.some((t) => typeof t === 'string' && tableMatches(t, f.table!))) return false;
  }
  if (f.sql !== undefined && f.sql !== '') {
    if (typeof rec['sql'] !== 'string' || !sqlKey(rec['sql']).includes(sqlKey(f.sql))) return false;
  }
  if (f.since !== undefined || f.until !== undefined) {
    const at = Date.parse(String(rec['at']));
    if (f.since !== undefined && !(at >= f.since)) return false;
    if (f.until !== undefined && !(at <= f.until)) return false;
  }
  return true;
}

/** The seqs [lo, hi] a time range can hold (bisection when time never goes back in the log); lo > hi when none. */
export function seqRange(idx: LoadedIndex, since: number | undefined, until: number | undefined): [number, number] {
  if (!idx.monotonic) return [0, idx.count - 1];
  const at = (seq: number): number => idx.floats[seq * 6 + 1]!;
  /** First seq whose at satisfies `ok` (ok is false, then true, along the log). */
  const first = (ok: (t: number) => boolean): number => {
    let a = 0;
    let b = idx.count;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (ok(at(m))) b = m;
      else a = m + 1;
    }
    return a;
  };
  const lo = since === undefined ? 0 : first((t) => t >= since);
  const hi = until === undefined ? idx.count - 1 : first((t) => t > until) - 1;
  return [lo, hi];
}

/** Seq of the sql.txt line starting at byte `start`, or NaN. */
function lineSeq(buf: Buffer, start: number): number {
  const tab = buf.indexOf(9, start);
  return tab === -1 ? NaN : Number(buf.toString('latin1', start, tab));
}

/** Byte offset just past the last sql.txt line whose seq is at most `hi` (lines are in seq order). */
function sqlLineEnd(buf: Buffer, hi: number): number {
  let a = 0;
  let b = buf.length;
  // Invariant: lines starting before `a` have seq <= hi; the line containing byte `b` and later ones have seq > hi.
  while (a < b) {
    const m = (a + b) >>> 1;
    const start = m === 0 ? 0 : buf.lastIndexOf(10, m - 1) + 1;
    const end = buf.indexOf(10, m);
    const seq = lineSeq(buf, start);
    if (!(seq > hi)) a = end === -1 ? buf.length : end + 1;
    else b = start;
  }
  return a;
}

/** Calls `visit(seq)` for each line of sql.txt before byte `end` that contains `needle`, last first, until it returns true. */
function forEachSqlHit(buf: Buffer, needle: Buffer, end: number, visit: (seq: number) => boolean): void {
  let pos = end - 1 - needle.length;
  while (pos >= 0) {
    const hit = buf.lastIndexOf(needle, pos);
    if (hit === -1) return;
    const lineStart = buf.lastIndexOf(10, hit) + 1;
    const tab = buf.indexOf(9, lineStart);
    if (tab !== -1 && hit > tab) {
      const seq = lineSeq(buf, lineStart);
      if (Number.isSafeInteger(seq) && visit(seq)) return;
    }
    pos = lineStart - 2;
  }
}

/** One row of `phigate sessions`. */
export interface SessionSummary {
  session: string;
  user: string;
  subject?: string;
  kind?: string;
  agent?: string;
  connection: string;
  client_addr?: string;
  application_name?: string;
  started_at: string;
  ended_at?: string;
  duration_ms?: number;
  statements?: number;
  recording?: RecordingSeal;
  end_reason?: string;
}

/** Sessions started in the window, newest first, each with what its session.end record says. */
export function listSessions(
  auditDir: string, f: Pick<SearchFilters, 'user' | 'connection' | 'since' | 'until' | 'limit' | 'session'>, index?: LoadedIndex,
): { sessions: SessionSummary[]; more: boolean; elapsedMs: number } {
  const started = performance.now();
  const idx = index ?? loadIndex(auditDir);
  const starts = searchAudit(auditDir, { ...f, types: ['session.start'] }, idx);
  const wanted = new Map<string, SessionSummary>();
  for (const r of starts.records) wanted.set(String(r['session']), sessionOfStart(r));
  if (wanted.size > 0) {
    // Each session's end, by its session id; ends come after starts, so one backwards pass.
    const ids = new Set([...wanted.keys()].map((s) => idx.dict.ids.s.get(s)).filter((x): x is number => x !== undefined));
    const endCode = typeCode('session.end');
    const fd = openSync(join(auditDir, LOG_FILE), 'r');
    try {
      let found = 0;
      for (let seq = idx.count - 1; seq >= 0 && found < ids.size; seq--) {
        const w = seq * ENTRY_WORDS;
        if ((idx.words[w + 10]! & 0xff) !== endCode || !ids.has(idx.words[w + 7]!)) continue;
        const line = preadSync(fd, idx.floats[seq * 6]!, idx.words[w + 4]!);
        const rec = parseRecordLine(line.subarray(0, line.length - 1));
        const s = rec && wanted.get(String(rec['session']));
        if (!rec || !s || s.ended_at) continue;
        found++;
        endSession(s, rec);
      }
    } finally {
      closeSync(fd);
    }
  }
  return { sessions: [...wanted.values()], more: starts.more, elapsedMs: performance.now() - started };
}

/** A `phigate sessions` row from a session.start record. */
export function sessionOfStart(r: StoredRecord): SessionSummary {
  return {
    session: String(r['session']), user: String(r['user']), subject: str(r['subject']), kind: str(r['kind']), agent: str(r['agent']),
    connection: String(r['connection']), client_addr: str(r['client_addr']), application_name: str(r['application_name']), started_at: r.at,
  };
}

/** Completes a row with what the session's session.end record says. */
export function endSession(s: SessionSummary, end: Record<string, unknown>): void {
  s.ended_at = String(end['at']);
  s.duration_ms = num(end['duration_ms']);
  s.statements = num(end['statements']);
  s.end_reason = str(end['reason']);
  const seal = end['recording'] as RecordingSeal | undefined;
  if (seal && typeof seal.sha256 === 'string' && typeof seal.file === 'string') s.recording = { sha256: seal.sha256, file: seal.file };
}

/** The session.end record of `session`, if the log has one (it carries the recording's seal). */
export function findSessionEnd(auditDir: string, session: string, index?: LoadedIndex): StoredRecord | undefined {
  return searchAudit(auditDir, { session, types: ['session.end'], limit: 1 }, index).records[0];
}

/** The seal a session's session.end record holds. */
export function sealOf(end: StoredRecord | undefined): RecordingSeal | undefined {
  const seal = end?.['recording'] as RecordingSeal | undefined;
  return seal && typeof seal.sha256 === 'string' && typeof seal.file === 'string' ? { sha256: seal.sha256, file: seal.file } : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}
