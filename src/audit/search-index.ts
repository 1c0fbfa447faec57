// The search index's files: written behind the log (at group commit, off the append path) and read
// by searches. It is a cache: entries carry byte offsets into audit.jsonl, every search re-reads and
// re-checks the records it returns, and an index that disagrees with the log is rebuilt from it.
//
// Files under `<audit dir>/index/`:
//   records.idx  one 48-byte entry per record, entry N = record seq N (see index-format.ts)
//   dict.jsonl   `["u"|"c"|"s", id, "value"]` per line: ids of users, connections and sessions
//   sql.txt      `seq<TAB>lower-cased statement text` per line, for records that carry `sql`
import {
  closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  ENTRY_BYTES, ENTRY_WORDS, decisionCode, indexFields, sqlKey, tablesBloom, typeCode, writeEntry, type DictKind,
} from './index-format.js';
import { preadSync, readLinesSync } from './lines.js';

export const INDEX_DIR = 'index';
export const LOG_FILE = 'audit.jsonl';
export const CHECKPOINTS_FILE = 'checkpoints.jsonl';

/** One record waiting to be indexed. */
export interface PendingEntry {
  seq: number;
  offset: number;
  /** Line length, newline included. */
  length: number;
  atMs: number;
  /** The event (or a parsed record): only its own fields are read, at the next flush. */
  record: Record<string, unknown>;
}

export class Dictionary {
  readonly ids: Record<DictKind, Map<string, number>> = { u: new Map(), c: new Map(), s: new Map() };
  readonly values: Record<DictKind, string[]> = { u: [''], c: [''], s: [''] };

  /** The id of `value`, assigning the next one (and reporting its dict.jsonl line) when new. */
  idOf(kind: DictKind, value: string | undefined, newLines?: string[]): number {
    if (value === undefined) return 0;
    const known = this.ids[kind].get(value);
    if (known !== undefined) return known;
    const id = this.values[kind].length;
    this.values[kind].push(value);
    this.ids[kind].set(value, id);
    newLines?.push(`${JSON.stringify([kind, id, value])}\n`);
    return id;
  }

  /** Loads dict.jsonl text; a torn last line is ignored. Returns the bytes of complete lines. */
  load(text: string): number {
    let good = 0;
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      if (nl === -1) break;
      const line = text.slice(from, nl);
      from = nl + 1;
      try {
        const [kind, id, value] = JSON.parse(line) as [DictKind, number, string];
        if ((kind === 'u' || kind === 'c' || kind === 's') && id === this.values[kind].length && typeof value === 'string') {
          this.values[kind].push(value);
          this.ids[kind].set(value, id);
          good += Buffer.byteLength(line) + 1;
          continue;
        }
      } catch {
        // fall through: stop at the first line that is not ours
      }
      break;
    }
    return good;
  }
}

/** Entries for `pending`, in order, with any new dictionary and SQL lines they need. */
export function encodeEntries(pending: readonly PendingEntry[], dict: Dictionary): { entries: Buffer; dictLines: string[]; sqlLines: string[] } {
  const ab = new ArrayBuffer(pending.length * ENTRY_BYTES);
  const words = new Uint32Array(ab);
  const floats = new Float64Array(ab);
  const dictLines: string[] = [];
  const sqlLines: string[] = [];
  pending.forEach((p, i) => {
    const f = indexFields(p.record);
    writeEntry(words, floats, i, {
      offset: p.offset, atMs: p.atMs, length: p.length,
      user: dict.idOf('u', f.user, dictLines), connection: dict.idOf('c', f.connection, dictLines), session: dict.idOf('s', f.session, dictLines),
      bloom: tablesBloom(f.tables), type: typeCode(f.type), decision: decisionCode(f.decision),
    });
    if (f.sql !== undefined) sqlLines.push(`${p.seq}\t${sqlKey(f.sql)}\n`);
  });
  return { entries: Buffer.from(ab), dictLines, sqlLines };
}

/** The record a log line holds, or undefined when it is not one (torn, damaged, foreign). */
export function parseRecordLine(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const r = v as Record<string, unknown>;
    return Number.isSafeInteger(r['seq']) && typeof r['at'] === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Whether entry `seq` (at `offset`, `length` bytes with its newline) points at record seq in the log. */
function entryPointsAtRecord(logFd: number, logSize: number, seq: number, offset: number, length: number): boolean {
  if (offset + length > logSize || length < 2) return false;
  const line = preadSync(logFd, offset, length);
  if (line[line.length - 1] !== 10 || (offset > 0 && preadSync(logFd, offset - 1, 1)[0] !== 10)) return false;
  const rec = parseRecordLine(line.subarray(0, line.length - 1));
  return rec !== undefined && rec['seq'] === seq;
}

/** Entries probed when an index is opened: the last one and this many spread over the rest. */
const PROBES = 32;

/**
 * How many entries of `idx` still describe the log open at `logFd`: all of them, or 0 (rebuild)
 * when a probe (the last entry, and entries spread over the file) does not point at its record.
 * Cheap enough for every open; a log edited behind its index is caught here or by the per-hit check.
 */
export function validIndexedCount(logFd: number, logSize: number, idx: Buffer, count: number): number {
  if (count === 0) return 0;
  const probes = new Set([count - 1, 0]);
  for (let k = 1; k < PROBES; k++) probes.add(Math.floor((count * k) / PROBES));
  for (const seq of probes) {
    const base = seq * ENTRY_BYTES;
    if (!entryPointsAtRecord(logFd, logSize, seq, idx.readDoubleLE(base), idx.readUInt32LE(base + 16))) return 0;
  }
  return count;
}

function lastEntry(idx: Buffer, count: number): { offset: number; length: number } {
  const base = (count - 1) * ENTRY_BYTES;
  return { offset: idx.readDoubleLE(base), length: idx.readUInt32LE(base + 16) };
}

/** Entries of the log's records from byte `from` on, parsed from the log itself. */
export function scanLogEntries(logFd: number, from: number, to: number, firstSeq: number): PendingEntry[] {
  const out: PendingEntry[] = [];
  let seq = firstSeq;
  for (const line of readLinesSync(logFd, from, to)) {
    if (!line.complete) break;
    const record = parseRecordLine(line.bytes);
    // A line that is not the next record ends what the index can describe; verify reports it.
    if (!record || record['seq'] !== seq) break;
    out.push({ seq, offset: line.offset, length: line.bytes.length + 1, atMs: Date.parse(record['at'] as string), record });
    seq++;
  }
  return out;
}

/** Keeps the index files in step with the log; owned by AuditLog. Failures disable it (it is a cache). */
export class IndexWriter {
  private readonly dict = new Dictionary();
  private pending: PendingEntry[] = [];
  private fds?: { idx: number; dict: number; sql: number };
  /** Records indexed or waiting to be. */
  count = 0;
  failed?: Error;

  private constructor(readonly dir: string) {}

  /** Opens (creating, repairing or rebuilding as needed) the index of the log open at `logFd`. */
  static open(auditDir: string, logFd: number, logSize: number): IndexWriter {
    const w = new IndexWriter(join(auditDir, INDEX_DIR));
    try {
      w.init(logFd, logSize);
    } catch (err) {
      w.disable(err as Error);
    }
    return w;
  }

  private init(logFd: number, logSize: number): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const idxFile = join(this.dir, 'records.idx');
    const dictFile = join(this.dir, 'dict.jsonl');
    const sqlFile = join(this.dir, 'sql.txt');
    const fds = {
      idx: openSync(idxFile, 'a+', 0o600),
      dict: openSync(dictFile, 'a+', 0o600),
      sql: openSync(sqlFile, 'a+', 0o600),
    };
    this.fds = fds;
    const idx = readFileSync(idxFile);
    const count = validIndexedCount(logFd, logSize, idx, Math.floor(idx.length / ENTRY_BYTES));
    if (count === 0) {
      ftruncateSync(fds.idx, 0);
      ftruncateSync(fds.dict, 0);
      ftruncateSync(fds.sql, 0);
    } else {
      if (idx.length !== count * ENTRY_BYTES) ftruncateSync(fds.idx, count * ENTRY_BYTES);
      const dictText = readFileSync(dictFile, 'utf8');
      const good = this.dict.load(dictText);
      if (good !== Buffer.byteLength(dictText)) ftruncateSync(fds.dict, good);
      ftruncateSync(fds.sql, sqlCutPoint(fds.sql, count));
    }
    this.count = count;
    const from = count === 0 ? 0 : lastEntry(idx, count).offset + lastEntry(idx, count).length;
    this.pending = scanLogEntries(logFd, from, logSize, count);
    this.count += this.pending.length;
    this.flush();
  }

  add(e: PendingEntry): void {
    if (this.failed) return;
    this.pending.push(e);
    this.count++;
  }

  /** Writes what is pending: dictionary first, then SQL lines, then entries, so entries never point at unknown ids. */
  flush(): void {
    if (this.failed || !this.fds || this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    try {
      const { entries, dictLines, sqlLines } = encodeEntries(pending, this.dict);
      if (dictLines.length > 0) writeAll(this.fds.dict, Buffer.from(dictLines.join('')));
      if (sqlLines.length > 0) writeAll(this.fds.sql, Buffer.from(sqlLines.join('')));
      writeAll(this.fds.idx, entries);
    } catch (err) {
      this.disable(err as Error);
    }
  }

  private disable(err: Error): void {
    this.failed = err;
    this.pending = [];
    this.close();
  }

  close(): void {
    if (!this.fds) return;
    for (const fd of Object.values(this.fds)) {
      try {
        closeSync(fd);
      } catch {
        // closing a cache
      }
    }
    this.fds = undefined;
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** Byte length of sql.txt's leading lines that describe records below `count` (later ones are stale). */
function sqlCutPoint(fd: number, count: number): number {
  const size = fstatSync(fd).size;
  for (let window = 64 * 1024; ; window *= 4) {
    const start = Math.max(0, size - window);
    const buf = preadSync(fd, start, size - start);
    // Walk complete lines from the end; the first one (from the end) below `count` ends the keep.
    let end = buf.lastIndexOf(10);
    while (end !== -1) {
      const prevNl = end === 0 ? -1 : buf.lastIndexOf(10, end - 1);
      if (prevNl === -1 && start > 0) break; // line may begin before the window: widen
      const tab = buf.indexOf(9, prevNl + 1);
      const seq = tab !== -1 && tab < end ? Number(buf.subarray(prevNl + 1, tab).toString('latin1')) : NaN;
      if (Number.isSafeInteger(seq) && seq < count) return start + end + 1;
      end = prevNl;
    }
    if (start === 0) return 0;
  }
}

/** An index loaded for searching: the persisted entries plus the log's unindexed tail. */
export interface LoadedIndex {
  auditDir: string;
  logFile: string;
  /** Records described (seq 0 .. count-1). */
  count: number;
  words: Uint32Array;
  floats: Float64Array;
  dict: Dictionary;
  /** sql.txt content covering records below `persisted`. */
  sql: () => Buffer;
  persisted: number;
  /** SQL lines of the tail (seq >= persisted), newest last. */
  tailSql: { seq: number; text: string }[];
  /** True when the index files were missing or stale and everything came from the log. */
  rebuilt: boolean;
  /** Whether `at` never decreases with seq (the log guarantees it), so time ranges are binary searches. */
  monotonic: boolean;
}

function isMonotonic(floats: Float64Array, count: number): boolean {
  for (let i = 1; i < count; i++) if (floats[i * 6 + 1]! < floats[(i - 1) * 6 + 1]!) return false;
  return true;
}

/** Loads the index of the log in `auditDir` for searching (read-only: auditors may hold a copy). */
export function loadIndex(auditDir: string, opts: { ignoreFiles?: boolean } = {}): LoadedIndex {
  const logFile = join(auditDir, LOG_FILE);
  const dir = join(auditDir, INDEX_DIR);
  const dict = new Dictionary();
  if (!existsSync(logFile)) {
    return {
      auditDir, logFile, count: 0, words: new Uint32Array(0), floats: new Float64Array(0), dict, sql: () => Buffer.alloc(0),
      persisted: 0, tailSql: [], rebuilt: false, monotonic: true,
    };
  }
  const logFd = openSync(logFile, 'r');
  try {
    const logSize = fstatSync(logFd).size;
    const idxFile = join(dir, 'records.idx');
    let idx = existsSync(idxFile) && !opts.ignoreFiles ? readFileSync(idxFile) : Buffer.alloc(0);
    const count = validIndexedCount(logFd, logSize, idx, Math.floor(idx.length / ENTRY_BYTES));
    if (count > 0) {
      const dictFile = join(dir, 'dict.jsonl');
      if (existsSync(dictFile)) dict.load(readFileSync(dictFile, 'utf8'));
    }
    const rebuilt = count === 0 && idx.length > 0;
    if (count === 0) idx = Buffer.alloc(0);
    const from = count === 0 ? 0 : lastEntry(idx, count).offset + lastEntry(idx, count).length;
    const tail = scanLogEntries(logFd, from, logSize, count);
    const enc = encodeEntries(tail, dict);
    const total = count + tail.length;
    const ab = new ArrayBuffer(total * ENTRY_BYTES);
    const bytes = new Uint8Array(ab);
    bytes.set(idx.subarray(0, count * ENTRY_BYTES), 0);
    bytes.set(enc.entries, count * ENTRY_BYTES);
    const tailSql = enc.sqlLines.map((l) => {
      const tab = l.indexOf('\t');
      return { seq: Number(l.slice(0, tab)), text: l.slice(tab + 1, -1) };
    });
    const sqlFile = join(dir, 'sql.txt');
    let sqlCache: Buffer | undefined;
    const persisted = count;
    const floats = new Float64Array(ab);
    return {
      auditDir, logFile, count: total, words: new Uint32Array(ab), floats, dict,
      sql: () => (sqlCache ??= persisted > 0 && existsSync(sqlFile) ? readFileSync(sqlFile) : Buffer.alloc(0)),
      persisted, tailSql, rebuilt: rebuilt || (count === 0 && tail.length > 0 && !existsSync(idxFile)),
      monotonic: isMonotonic(floats, total),
    };
  } finally {
    closeSync(logFd);
  }
}

export { ENTRY_WORDS };
export function fileSize(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}
