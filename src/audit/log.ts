// The append-only, hash-chained audit log (SPEC.md §5): one canonical-JSON line per record in
// `<dir>/audit.jsonl`, each holding the SHA-256 of its predecessor's line. Appends are synchronous
// (the record is in the OS before append returns, or append throws and the caller refuses the
// statement); fsync is a group commit on a timer; signed checkpoints of synced heads go to
// `<dir>/checkpoints.jsonl`. A torn final line left by a crash is cut on open, and the cut recorded.
import type { KeyObject } from 'node:crypto';
import {
  closeSync, existsSync, fstatSync, fsync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync,
  writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { GENESIS_PREV, canonicalJson, canonicalRecord, sha256Hex } from './canonical.js';
import { AuditFormatError, AuditKeyError, AuditLockedError, AuditWriteError } from './errors.js';
import type { AuditEvent, LogRepairedEvent } from './events.js';
import { keyFingerprint, publicKeyPem, signCheckpoint, type Checkpoint } from './keys.js';
import { preadSync } from './lines.js';
import { takePidLock } from '../server/pid-lock.js';
import { CHECKPOINTS_FILE, IndexWriter, LOG_FILE, parseRecordLine } from './search-index.js';

export const PUBLIC_KEY_FILE = 'public-key.pem';
/** The largest encoding buffer appendMany keeps for the next batch. */
const SCRATCH_KEEP = 1024 * 1024;
const LOCK_FILE = 'LOCK';

export interface AuditLogOptions {
  /** Group commit: fsync this long after the first unsynced append (default 50 ms). */
  syncIntervalMs?: number;
  /** Sign a checkpoint once this many records were appended since the last one (default 1000). */
  checkpointEvery?: number;
  /** ... and at least this often while records keep coming (default 60 s). */
  checkpointIntervalMs?: number;
  /** Without a key no checkpoints are written (truncation then cannot be proven). */
  signingKey?: KeyObject;
  /** A background fsync or checkpoint failed: the log is now refusing appends (fail closed). */
  onError?: (err: AuditWriteError) => void;
  /** Told how long each append and each fsync took (the gateway's metrics). */
  timings?: AuditTimings;
}

/** What the log reports about its own writes. */
export interface AuditTimings {
  /** One appendMany: canonical form, hashes, write(2); `records` in the batch. */
  append(seconds: number, records: number): void;
  /** One group-commit fsync. */
  fsync(seconds: number): void;
}

export interface AppendResult {
  seq: number;
  /** SHA-256 hex of the record's canonical form (its line). */
  hash: string;
}

export interface AuditLogStats {
  /** Records in the log (the next seq). */
  records: number;
  /** Records appended by this process. */
  appended: number;
  /** Records known to be on disk. */
  synced: number;
  /** Bytes of the log known to be on disk (the end of record `synced - 1`'s line). */
  syncedBytes: number;
  fsyncs: number;
  checkpoints: number;
  lastCheckpointSeq: number;
  bytes: number;
}

interface Waiter {
  target: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** What open found at the end of the log and cut. */
interface TailRepair {
  offset: number;
  bytes: number;
  cutSha256: string;
  reason: string;
}

/** Cuts what findTail found past the last good line (fsynced), saying what was cut, for the log.repaired record. */
function cutTail(fd: number, size: number, tail: { end: number; reason?: string }): TailRepair | undefined {
  if (tail.end >= size) return undefined;
  const cut = preadSync(fd, tail.end, size - tail.end);
  ftruncateSync(fd, tail.end);
  fsyncSync(fd);
  return { offset: tail.end, bytes: cut.length, cutSha256: sha256Hex(cut), reason: tail.reason ?? 'incomplete final line' };
}

export class AuditLog {
  readonly file: string;
  readonly checkpointsFile: string;
  private readonly syncIntervalMs: number;
  private readonly checkpointEvery: number;
  private readonly checkpointIntervalMs: number;
  private readonly key?: KeyObject;
  private readonly onError?: (err: AuditWriteError) => void;
  private readonly timings?: AuditTimings;

  private fd: number;
  private cpFd?: number;
  private offset: number;
  private lastAtMs: number;
  private cpOffset = 0;
  private nextSeq: number;
  private headHash: string;
  private readonly index: IndexWriter;
  /** Where appendMany encodes a batch; reused, as the write is done before appendMany returns. */
  private scratch = Buffer.allocUnsafe(16 * 1024);

  private syncedSeq: number;
  private syncedHash: string;
  private syncedBytes: number;
  private syncing = false;
  private syncTimer?: NodeJS.Timeout;
  private checkpointTimer?: NodeJS.Timeout;
  private waiters: Waiter[] = [];
  private checkpointDue: boolean;
  private lastCheckpointSeq = -1;
  private lastCheckpointAtMs = 0;
  private cpSyncs: Promise<void>[] = [];

  private broken?: AuditWriteError;
  private closed = false;
  private closing?: Promise<void>;
  private readonly counters = { appended: 0, fsyncs: 0, checkpoints: 0 };
  /** What open cut from torn tails (the `log.repaired` records are already appended). */
  readonly repaired: LogRepairedEvent[] = [];
  private unlock?: () => void;

  private constructor(readonly dir: string, opts: AuditLogOptions, state: {
    fd: number; offset: number; nextSeq: number; headHash: string; lastAtMs: number; index: IndexWriter;
  }) {
    this.file = join(dir, LOG_FILE);
    this.checkpointsFile = join(dir, CHECKPOINTS_FILE);
    this.syncIntervalMs = Math.max(0, opts.syncIntervalMs ?? 50);
    this.checkpointEvery = Math.max(1, opts.checkpointEvery ?? 1000);
    this.checkpointIntervalMs = Math.max(1, opts.checkpointIntervalMs ?? 60_000);
    this.key = opts.signingKey;
    this.onError = opts.onError;
    this.timings = opts.timings;
    this.fd = state.fd;
    this.offset = state.offset;
    this.lastAtMs = state.lastAtMs;
    this.nextSeq = state.nextSeq;
    this.headHash = state.headHash;
    this.syncedSeq = state.nextSeq;
    this.syncedHash = state.headHash;
    this.syncedBytes = state.offset;
    this.index = state.index;
    // A fresh start anchors its head at the first group commit instead of waiting N records or T ms.
    this.checkpointDue = true;
  }

  /**
   * Opens (creating) the log in `dir`: takes the directory's lock, cuts a torn final line (and
   * records that it did), and catches the search index up. Throws AuditLockedError when another live
   * process holds the log, AuditFormatError when the end of the log is damaged beyond a torn line.
   */
  static open(dir: string, opts: AuditLogOptions = {}): AuditLog {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const unlock = takeLock(dir);
    let fd: number | undefined;
    try {
      const file = join(dir, LOG_FILE);
      if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
      fd = openSync(file, 'r+');
      const size = fstatSync(fd).size;
      const tail = findTail(fd, size, file);
      const repair = cutTail(fd, size, tail);
      const index = IndexWriter.open(dir, fd, tail.end);
      const log = new AuditLog(dir, opts, {
        fd, offset: tail.end, nextSeq: tail.last ? tail.last.seq + 1 : 0, headHash: tail.last ? tail.last.hash : GENESIS_PREV, index,
        lastAtMs: tail.last ? Date.parse(String(tail.last.at)) || 0 : 0,
      });
      log.unlock = unlock;
      let cpRepair: TailRepair | undefined;
      try {
        cpRepair = log.openCheckpoints();
      } catch (err) {
        index.close();
        if (log.cpFd !== undefined) closeSync(log.cpFd);
        throw err;
      }
      if (log.key) {
        log.checkpointTimer = setInterval(() => log.onCheckpointTimer(), log.checkpointIntervalMs);
        log.checkpointTimer.unref();
      }
      for (const [name, r] of [[LOG_FILE, repair], [CHECKPOINTS_FILE, cpRepair]] as const) {
        if (!r) continue;
        const event: LogRepairedEvent = { type: 'log.repaired', file: name, offset: r.offset, bytes: r.bytes, cut_sha256: r.cutSha256, reason: r.reason };
        log.append(event);
        log.repaired.push(event);
      }
      return log;
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      unlock();
      throw err;
    }
  }

  /** The last record's seq (-1 when empty) and hash. */
  get head(): AppendResult {
    return { seq: this.nextSeq - 1, hash: this.headHash };
  }

  /**
   * Appends one record; it is written to the OS before this returns. Throws AuditWriteError when it
   * cannot be (the caller refuses what it was about to do).
   */
  append(event: AuditEvent): AppendResult {
    const r = this.appendMany([event]);
    return r[0]!;
  }

  /** Several records with one write (a client chunk's statements): all are written, or none. */
  appendMany(events: readonly AuditEvent[]): AppendResult[] {
    this.writable();
    if (events.length === 0) return [];
    const t0 = this.timings ? performance.now() : 0;
    // Time never goes backwards in the log (a clock step back holds it still until the clock catches
    // up), so searches can find a time range by bisection.
    const now = Math.max(Date.now(), this.lastAtMs);
    const at = new Date(now).toISOString();
    let seq = this.nextSeq;
    let prev = this.headHash;
    const out: AppendResult[] = new Array<AppendResult>(events.length);
    const ends: number[] = new Array<number>(events.length);
    // Each line is encoded once, into one buffer: its hash is taken from those bytes, its length is
    // what encoding returned, and the buffer is what is written (no join, no second or third pass).
    let buf = this.scratch;
    let used = 0;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      if (typeof event?.type !== 'string') throw new TypeError('audit event without a type');
      if ((event as { bundle?: unknown }).bundle !== undefined) throw new TypeError('audit events may not use the field "bundle"');
      // The log's fields win: an event cannot set its own seq, time or link.
      const line = canonicalRecord(event as unknown as Record<string, unknown>, seq, at, prev);
      // UTF-8 takes at most 3 bytes per UTF-16 code unit; +1 for the newline.
      const room = used + line.length * 3 + 1;
      if (room > buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(room, buf.length * 2));
        buf.copy(grown, 0, 0, used);
        buf = grown;
      }
      const n = buf.write(line, used);
      const hash = sha256Hex(buf.subarray(used, used + n));
      buf[used + n] = 10;
      used += n + 1;
      ends[i] = used;
      out[i] = { seq, hash };
      prev = hash;
      seq++;
    }
    // A huge batch (a megabyte statement) is not kept as the next batch's buffer.
    if (buf !== this.scratch && buf.length <= SCRATCH_KEEP) this.scratch = buf;
    this.writeAt(buf.subarray(0, used));
    let offset = this.offset;
    for (let i = 0; i < events.length; i++) {
      this.index.add({ seq: this.nextSeq + i, offset, length: this.offset + ends[i]! - offset, atMs: now, record: events[i] as unknown as Record<string, unknown> });
      offset = this.offset + ends[i]!;
    }
    this.nextSeq = seq;
    this.headHash = prev;
    this.lastAtMs = now;
    this.offset += used;
    this.counters.appended += out.length;
    this.scheduleSync();
    this.timings?.append((performance.now() - t0) / 1000, out.length);
    return out;
  }

  /** Resolves once a group-commit fsync covers every record appended before the call. */
  synced(): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.syncedSeq >= this.nextSeq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ target: this.nextSeq, resolve, reject });
      this.scheduleSync();
    });
  }

  /** Syncs now (not at the next tick) and signs a checkpoint of the head; used by export and close. */
  async checkpoint(): Promise<Checkpoint | undefined> {
    if (this.syncTimer) {
      clearTimeout(this.syncTimer);
      this.syncTimer = undefined;
      this.runSync();
    }
    await this.synced();
    const cp = this.writeCheckpoint(true);
    await Promise.all(this.cpSyncs);
    return cp;
  }

  /** Writes index entries still held in memory, so a reader sees every record without parsing the log. */
  flushIndex(): void {
    this.index.flush();
  }

  stats(): AuditLogStats {
    return {
      records: this.nextSeq, appended: this.counters.appended, synced: this.syncedSeq, syncedBytes: this.syncedBytes, fsyncs: this.counters.fsyncs,
      checkpoints: this.counters.checkpoints, lastCheckpointSeq: this.lastCheckpointSeq, bytes: this.offset,
    };
  }

  /** Final fsync and checkpoint; further appends throw. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    try {
      if (!this.broken) {
        await this.checkpoint();
      }
    } finally {
      this.closed = true;
      if (this.syncTimer) clearTimeout(this.syncTimer);
      this.index.flush();
      this.index.close();
      await Promise.allSettled(this.cpSyncs);
      closeSync(this.fd);
      if (this.cpFd !== undefined) closeSync(this.cpFd);
      this.unlock?.();
    }
  }

  private writable(): void {
    if (this.broken) throw this.broken;
    if (this.closed || this.closing) {
      throw new AuditWriteError(this.file, 'closed', `the audit log ${this.file} is closed`, 'the gateway is shutting down');
    }
  }

  private writeAt(buf: Buffer): void {
    let done = 0;
    try {
      while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done, this.offset + done);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (done > 0) {
        // A partial line would corrupt every later record: take it back, or stop writing at all.
        try {
          ftruncateSync(this.fd, this.offset);
        } catch {
          this.broken = new AuditWriteError(this.file, 'broken', `the audit log ${this.file} holds a partial record that could not be removed`,
            'restart phigate server: opening the log cuts the partial record and records the repair');
        }
      }
      throw new AuditWriteError(this.file, e.code ?? 'EIO', `cannot write the audit log ${this.file}: ${e.message}`,
        e.code === 'ENOSPC' ? 'the disk is full; free space under --data-dir' : 'check the disk under --data-dir');
    }
  }

  private scheduleSync(): void {
    if (this.syncTimer || this.syncing || this.closed) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.runSync();
    }, this.syncIntervalMs);
  }

  private runSync(): void {
    if (this.syncing || this.broken) return;
    const cover = this.nextSeq;
    const hash = this.headHash;
    const coverBytes = this.offset;
    if (cover <= this.syncedSeq) return;
    this.index.flush();
    this.syncing = true;
    const t0 = performance.now();
    fsync(this.fd, (err) => {
      this.syncing = false;
      this.counters.fsyncs++;
      if (!err) this.timings?.fsync((performance.now() - t0) / 1000);
      if (err) {
        // After a failed fsync the kernel may have dropped the dirty pages: nothing since the last
        // good sync can be trusted to be on disk, so stop accepting records.
        this.fail(new AuditWriteError(this.file, err.code ?? 'EIO', `cannot sync the audit log ${this.file}: ${err.message}`, 'check the disk under --data-dir'));
        return;
      }
      this.syncedSeq = cover;
      this.syncedHash = hash;
      this.syncedBytes = coverBytes;
      const ready = this.waiters.filter((w) => w.target <= cover);
      this.waiters = this.waiters.filter((w) => w.target > cover);
      for (const w of ready) w.resolve();
      this.writeCheckpoint(false);
      if (this.nextSeq > this.syncedSeq && !this.closed) this.scheduleSync();
    });
  }

  private fail(err: AuditWriteError): void {
    if (this.broken) return;
    this.broken = err;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
    this.onError?.(err);
  }

  private onCheckpointTimer(): void {
    if (this.nextSeq - 1 <= this.lastCheckpointSeq) return;
    this.checkpointDue = true;
    if (this.syncedSeq >= this.nextSeq) this.writeCheckpoint(false);
    else this.scheduleSync();
  }

  /** Signs the synced head when a checkpoint is due (or forced); only synced records are ever signed. */
  private writeCheckpoint(force: boolean): Checkpoint | undefined {
    if (!this.key || this.cpFd === undefined || this.broken) return undefined;
    const seq = this.syncedSeq - 1;
    if (seq < 0 || seq <= this.lastCheckpointSeq) return undefined;
    const due = force || this.checkpointDue || seq - this.lastCheckpointSeq >= this.checkpointEvery
      || Date.now() - this.lastCheckpointAtMs >= this.checkpointIntervalMs;
    if (!due) return undefined;
    const cp = signCheckpoint({ seq, hash: this.syncedHash, at: new Date().toISOString() }, this.key);
    const buf = Buffer.from(`${canonicalJson(cp)}\n`);
    try {
      let done = 0;
      while (done < buf.length) done += writeSync(this.cpFd, buf, done, buf.length - done, this.cpOffset + done);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.fail(new AuditWriteError(this.checkpointsFile, e.code ?? 'EIO', `cannot write a checkpoint to ${this.checkpointsFile}: ${e.message}`, 'check the disk under --data-dir'));
      return undefined;
    }
    this.cpOffset += buf.length;
    this.lastCheckpointSeq = seq;
    this.lastCheckpointAtMs = Date.now();
    this.checkpointDue = false;
    this.counters.checkpoints++;
    const cpFd = this.cpFd;
    const p = new Promise<void>((resolve) => {
      fsync(cpFd, (err) => {
        if (err) this.fail(new AuditWriteError(this.checkpointsFile, err.code ?? 'EIO', `cannot sync ${this.checkpointsFile}: ${err.message}`, 'check the disk under --data-dir'));
        resolve();
      });
    });
    this.cpSyncs.push(p);
    void p.then(() => (this.cpSyncs = this.cpSyncs.filter((x) => x !== p)));
    return cp;
  }

  /** Opens checkpoints.jsonl and the public key file; cuts a torn checkpoint line. */
  private openCheckpoints(): TailRepair | undefined {
    if (!this.key) return undefined;
    const pubFile = join(this.dir, PUBLIC_KEY_FILE);
    const pem = publicKeyPem(this.key);
    if (existsSync(pubFile)) {
      const have = readFileSync(pubFile, 'utf8');
      if (have.trim() !== pem.trim()) {
        throw new AuditKeyError(pubFile, `the audit log was signed with another key than ${keyFingerprint(this.key)}`,
          'restore the data directory\'s original audit-signing-key.pem; a new key cannot continue an existing log');
      }
    } else {
      writeFileSync(pubFile, pem, { mode: 0o600 });
    }
    if (!existsSync(this.checkpointsFile)) closeSync(openSync(this.checkpointsFile, 'a', 0o600));
    const fd = openSync(this.checkpointsFile, 'r+');
    this.cpFd = fd;
    const size = fstatSync(fd).size;
    const tail = findTail(fd, size, this.checkpointsFile, (bytes) => {
      const c = parseRecordLike(bytes);
      return c && Number.isSafeInteger(c['seq']) && typeof c['hash'] === 'string' ? { seq: c['seq'] as number, at: c['at'] } : undefined;
    });
    const repair = cutTail(fd, size, tail);
    this.cpOffset = tail.end;
    if (tail.last) {
      this.lastCheckpointSeq = tail.last.seq;
      const at = Date.parse(String(tail.last.at ?? ''));
      this.lastCheckpointAtMs = Number.isFinite(at) ? at : 0;
    }
    return repair;
  }
}

function parseRecordLike(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

interface Tail {
  /** Bytes to keep: up to and including the last good line's newline. */
  end: number;
  last?: { seq: number; hash: string; at?: unknown };
  reason?: string;
}

/**
 * Finds where the good part of a line file ends. Bytes after the last newline are a torn write; a
 * final line that ends in a newline but is not a record (zero-filled blocks after a power loss) is
 * cut too. Anything worse is not a crash artefact: AuditFormatError, and `audit verify` says where.
 */
function findTail(
  fd: number, size: number, file: string,
  parse: (bytes: Buffer) => { seq: number; at?: unknown } | undefined = (b) => {
    const r = parseRecordLine(b);
    return r ? { seq: r['seq'] as number, at: r['at'] } : undefined;
  },
): Tail {
  if (size === 0) return { end: 0 };
  for (let window = 64 * 1024; ; window *= 4) {
    const start = Math.max(0, size - window);
    const buf = preadSync(fd, start, size - start);
    const reasons: string[] = [];
    let end = buf.lastIndexOf(10) + 1;
    if (end === 0 && start > 0) continue; // no newline in the window: widen
    if (end < buf.length) reasons.push(`incomplete final line (${buf.length - end} bytes without a newline)`);
    let widen = false;
    // Up to two complete lines from the end: the last may be garbage from a crash.
    for (let attempt = 0; attempt < 2 && end > 0; attempt++) {
      const prevNl = end === 1 ? -1 : buf.lastIndexOf(10, end - 2);
      if (prevNl === -1 && start > 0) {
        widen = true; // the line may begin before the window
        break;
      }
      const bytes = buf.subarray(prevNl + 1, end - 1);
      const rec = parse(bytes);
      if (rec) {
        return { end: start + end, last: { seq: rec.seq, hash: sha256Hex(bytes), at: rec.at }, reason: reasons.join('; ') || undefined };
      }
      if (attempt === 1) {
        throw new AuditFormatError(file, `the end of the file is damaged beyond a torn final line (line ending at byte ${start + end} is not a record)`);
      }
      reasons.push(`final line was not a record (${bytes.length} bytes)`);
      end = prevNl + 1;
    }
    if (widen) continue;
    // Nothing before the cut: the file held only a torn or damaged line.
    return { end: 0, reason: reasons.join('; ') || 'no complete record' };
  }
}

/** One process per log (see takePidLock). */
function takeLock(dir: string): () => void {
  return takePidLock(join(dir, LOCK_FILE), (holder) => new AuditLockedError(dir, holder.pid));
}
