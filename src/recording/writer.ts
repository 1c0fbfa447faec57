// Writes one session's recording: buffered (not on the statement's critical path), whole lines per
// write so a crash leaves a readable prefix, hashed as it is written so sealing needs no re-read.
// Rows beyond the per-statement cap are counted, not kept. A failing disk never breaks the session
// from here: the writer stops, remembers why, and close() reports it next to the seal.
import { createHash, type Hash } from 'node:crypto';
import { close as closeFd, closeSync, fsync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_ROW_CAP, RECORDING_FORMAT, RECORDING_VERSION, recordingFileName,
  type Column, type Message, type RecordingHeader, type RecordingMeta, type WaitState,
} from './format.js';

export interface RecordingOptions {
  /** Result rows kept per statement (default 1,000); the true count is always recorded. */
  rowCap?: number;
  /** Write once this much is buffered (default 64 KiB). */
  flushBytes?: number;
  /** ... or this long after the first unwritten event (default 250 ms). */
  flushIntervalMs?: number;
  /** The clock (tests). */
  now?: () => number;
  /** Called once when the recording could not be written; the session may decide to end. */
  onError?: (err: Error) => void;
}

export interface RecordingSealResult {
  /** SHA-256 hex of the file's bytes: goes into the session.end audit record. */
  sha256: string;
  path: string;
  /** File name within the recordings directory (what the audit record names). */
  file: string;
  bytes: number;
  /** Set when writing failed: the seal covers only what reached the file before. */
  error?: string;
}

export interface StatementInfo {
  sql: string;
  decision: string;
  rule?: string;
  kinds?: string[];
  tables?: string[];
}

export interface WaitInfo {
  approval: string;
  state: WaitState;
  approvers?: string[];
  approver?: string;
  reason?: string;
  rule?: string;
}

export class RecordingWriter {
  private readonly hash: Hash = createHash('sha256');
  private buf: string[] = [];
  private bufBytes = 0;
  private timer?: NodeJS.Timeout;
  private written = 0;
  private n = 0;
  private rowsThisStatement = 0;
  private keptThisStatement = 0;
  private rowsThisResult = 0;
  private keptThisResult = 0;
  private closed?: RecordingSealResult;
  private failure?: Error;
  private readonly rowCap: number;
  private readonly flushBytes: number;
  private readonly flushIntervalMs: number;
  private readonly now: () => number;
  private readonly startMs: number;

  private constructor(
    private fd: number | undefined,
    readonly path: string,
    readonly file: string,
    private readonly opts: RecordingOptions,
  ) {
    this.rowCap = Math.max(0, opts.rowCap ?? DEFAULT_ROW_CAP);
    this.flushBytes = opts.flushBytes ?? 64 * 1024;
    this.flushIntervalMs = opts.flushIntervalMs ?? 250;
    this.now = opts.now ?? Date.now;
    this.startMs = this.now();
  }

  /** Creates `<dir>/<sessionId>.ndjson` (mode 0600) and writes its header. */
  static open(dir: string, sessionId: string, meta: RecordingMeta, opts: RecordingOptions = {}): RecordingWriter {
    const file = recordingFileName(sessionId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, file);
    // wx: a recording is never overwritten, even by a session that reuses an id.
    const fd = openSync(path, 'wx', 0o600);
    const w = new RecordingWriter(fd, path, file, opts);
    const header: RecordingHeader = {
      ...meta, type: 'header', format: RECORDING_FORMAT, version: RECORDING_VERSION,
      session: sessionId, started_at: new Date(w.startMs).toISOString(), row_cap: w.rowCap,
    };
    w.line(header);
    // The header reaches the file at once: a session that dies early still leaves a recording.
    w.flush();
    return w;
  }

  /**
   * Statement number `n` of the session begins; returns n. `continues`: it fetches more rows of the
   * previous statement's result (an Execute of the same portal again), so those rows count against
   * the same row cap instead of starting a new one.
   */
  statement(s: StatementInfo, continues = false): number {
    this.n++;
    if (!continues) {
      this.rowsThisStatement = 0;
      this.keptThisStatement = 0;
    }
    this.event({ t: this.t(), type: 'statement', n: this.n, ...s });
    return this.n;
  }

  rowDescription(columns: readonly Column[]): void {
    this.rowsThisResult = 0;
    this.keptThisResult = 0;
    this.event({ t: this.t(), type: 'columns', n: this.n, columns: columns.map((c) => (c.type === undefined ? { name: c.name } : { name: c.name, type: c.type })) });
  }

  /** Whether the next row would be kept (under the per-statement cap); rows past it are only counted. */
  keepsNextRow(): boolean {
    return this.keptThisStatement < this.rowCap;
  }

  /** A row past the cap: counted for the true row count, its values never decoded. */
  countRow(): void {
    this.rowsThisStatement++;
    this.rowsThisResult++;
  }

  /** One result row, already masked; text values, null for NULL. */
  row(values: readonly (string | null)[]): void {
    this.rowsThisStatement++;
    this.rowsThisResult++;
    if (this.keptThisStatement >= this.rowCap) return;
    this.keptThisStatement++;
    this.keptThisResult++;
    this.event({ t: this.t(), type: 'row', n: this.n, values });
  }

  /** A result (or command) finished; `rows` defaults to the rows seen since its RowDescription. */
  complete(c: { tag: string; rows?: number }): void {
    const rows = c.rows ?? this.rowsThisResult;
    this.event({ t: this.t(), type: 'complete', n: this.n, tag: c.tag, rows, recorded: Math.min(this.keptThisResult, rows) });
    this.rowsThisResult = 0;
    this.keptThisResult = 0;
  }

  error(e: Message): void {
    this.event({ t: this.t(), type: 'error', n: this.n, ...e });
  }

  notice(e: Message): void {
    this.event({ t: this.t(), type: 'notice', n: this.n, ...e });
  }

  /** A held statement started or stopped waiting for an approver. */
  wait(w: WaitInfo): void {
    this.event({ t: this.t(), type: 'wait', n: this.n, ...w });
  }

  /** Ends the recording and seals it: the SHA-256 of every byte written. Idempotent. */
  close(end: { reason?: string } = {}): RecordingSealResult {
    if (this.closed) return this.closed;
    this.event({ t: this.t(), type: 'end', statements: this.n, ...(end.reason ? { reason: end.reason } : {}) });
    this.flush();
    if (this.timer) clearTimeout(this.timer);
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) {
      // Synced in the background: the seal is known now, the session's end need not wait for the disk.
      fsync(fd, () => closeFd(fd, () => {}));
    }
    this.closed = {
      sha256: this.hash.digest('hex'), path: this.path, file: this.file, bytes: this.written,
      ...(this.failure ? { error: this.failure.message } : {}),
    };
    return this.closed;
  }

  /** Milliseconds since the recording started: every event's first field (built in place, not spread in). */
  private t(): number {
    return Math.max(0, Math.round(this.now() - this.startMs));
  }

  private event(e: { t: number } & Record<string, unknown>): void {
    if (this.closed) return;
    this.line(e);
  }

  private line(v: unknown): void {
    const s = `${JSON.stringify(v)}\n`;
    this.buf.push(s);
    this.bufBytes += s.length;
    if (this.bufBytes >= this.flushBytes) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.flushIntervalMs);
      this.timer.unref();
    }
  }

  private flush(): void {
    if (this.buf.length === 0) return;
    const data = Buffer.from(this.buf.join(''));
    this.buf = [];
    this.bufBytes = 0;
    if (this.fd === undefined || this.failure) return;
    let done = 0;
    try {
      while (done < data.length) done += writeSync(this.fd, data, done, data.length - done);
      this.hash.update(data);
      this.written += data.length;
    } catch (err) {
      // The seal covers exactly the bytes the file holds, partial line included.
      this.hash.update(data.subarray(0, done));
      this.written += done;
      this.failure = new Error(`cannot write the recording ${this.path}: ${(err as Error).message}`);
      try {
        closeSync(this.fd);
      } catch {
        // already unusable
      }
      this.fd = undefined;
      this.opts.onError?.(this.failure);
    }
  }
}
