// Ships this replica's evidence to the shared store (`--store`), so that an auditor asking any
// replica finds every replica's records, sessions and recordings (docs/operator.md "Several replicas"). The local log stays the
// record of truth: it is written (and fsynced by group commit) before a statement is forwarded, and
// shipping follows it asynchronously, so a slow or absent store never holds up or refuses a
// statement. Only records already on disk are shipped: after a crash the local log can never be
// shorter than what the store holds. Each replica's log is its own hash chain, named by the
// fingerprint of its checkpoint key; the store keeps every chain's lines byte for byte, its signed
// checkpoints and its public key, so the chains can be verified from the store alone.
import type { KeyObject } from 'node:crypto';
import { sha256Hex } from './canonical.js';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SharedDatabase } from '../store/shared-db.js';
import type { Logger } from '../common/log.js';
import { recordingFileName } from '../recording/format.js';
import { indexFields, sqlKey } from './index-format.js';
import { tableFilterKey } from '../common/table-name.js';
import { keyFingerprint, publicKeyPem } from './keys.js';
import { preadSync } from './lines.js';
import type { AuditLog } from './log.js';
import { CHECKPOINTS_FILE, LOG_FILE, parseRecordLine } from './search-index.js';

/** At most this much of the log per round trip. */
const BATCH_BYTES = 1 << 20;

export interface ShipperOptions {
  db: SharedDatabase;
  log: AuditLog;
  signingKey: KeyObject;
  recordingsDir: string;
  /** Texts of the policy versions the records name (`<data-dir>/policies`), for exports from the store. */
  policiesDir?: string;
  logger: Logger;
  /** How often to look for newly synced records (default 200 ms). */
  intervalMs?: number;
}

export interface ShipperStats {
  chain: string;
  /** Last seq in the store, -1 before the first. */
  shippedSeq: number;
  /** Records on local disk not yet in the store. */
  behind: number;
  /** The last attempt failed (the store is unreachable); shipping resumes by itself. */
  failing: boolean;
  /** Seconds since the store last held every record synced here (0 while it does). */
  lagSeconds: number;
}

export class AuditShipper {
  readonly chain: string;
  private readonly intervalMs: number;
  private fd?: number;
  private pos = 0;
  private cpPos = 0;
  private shippedSeq = -1;
  private timer?: NodeJS.Timeout;
  /** Rounds run one at a time (the timer's and flush's), each from where the last one stopped. */
  private queue: Promise<void> = Promise.resolve();
  private failing = false;
  /** Policy texts known to be in the store. */
  private readonly shippedPolicies = new Set<string>();
  /** The policies directory is read at start and after a policy.activated record, not every round. */
  private policiesDue = true;
  private stopped = false;
  /** When a round last found nothing synced left to ship. */
  private caughtUpAt = Date.now();

  constructor(private readonly opts: ShipperOptions) {
    this.chain = keyFingerprint(opts.signingKey);
    this.intervalMs = opts.intervalMs ?? 200;
  }

  /** Registers this chain (the tables are the store's, store/migrations.ts) and starts shipping from where the store left off. */
  async start(): Promise<void> {
    const { db } = this.opts;
    await db.query(
      'INSERT INTO phigate.audit_chains (chain, public_key) VALUES ($1, $2) ON CONFLICT (chain) DO NOTHING',
      [this.chain, publicKeyPem(this.opts.signingKey)]);
    const r = await db.query('SELECT shipped_seq, shipped_bytes, checkpoint_bytes FROM phigate.audit_chains WHERE chain = $1', [this.chain]);
    const row = r.rows[0] as { shipped_seq: string; shipped_bytes: string; checkpoint_bytes: string };
    this.fd = openSync(join(this.opts.log.dir, LOG_FILE), 'r');
    this.shippedSeq = Number(row.shipped_seq);
    this.pos = this.resumeAt(Number(row.shipped_bytes), this.shippedSeq);
    this.cpPos = Number(row.checkpoint_bytes);
    this.schedule(0);
  }

  stats(): ShipperStats {
    const behind = this.opts.log.stats().synced - 1 - this.shippedSeq;
    return { chain: this.chain, shippedSeq: this.shippedSeq, behind, failing: this.failing, lagSeconds: behind > 0 ? (Date.now() - this.caughtUpAt) / 1000 : 0 };
  }

  /** Ships whatever is on disk now; resolves when the store has it (tests, and before stopping). */
  async flush(): Promise<void> {
    await this.ship();
  }

  /** Final round (bounded), then stops. The local log keeps what could not be shipped; the next start sends it. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.race([this.ship().catch(() => {}), new Promise((r) => setTimeout(r, 3_000).unref())]);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /**
   * Where to continue in the local log: just past the last shipped line, when the line there is the
   * next record. Otherwise (the data directory was restored or replaced) start over: what the store
   * already holds is kept, and anything that disagrees shows in `phigate audit verify`.
   */
  private resumeAt(bytes: number, seq: number): number {
    if (seq < 0) return 0;
    const size = fstatSync(this.fd!).size;
    if (bytes === size) return bytes;
    if (bytes > 0 && bytes < size && preadSync(this.fd!, bytes - 1, 1)[0] === 10) {
      const chunk = preadSync(this.fd!, bytes, Math.min(BATCH_BYTES, size - bytes));
      const nl = chunk.indexOf(10);
      const next = nl === -1 ? undefined : parseRecordLine(chunk.subarray(0, nl));
      if (next?.['seq'] === seq + 1) return bytes;
    }
    this.opts.logger.warn('the shared store does not match the local audit log where shipping stopped; shipping it again from the start', { chain: this.chain });
    return 0;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ship().then(
        () => {
          if (this.failing) this.opts.logger.info('evidence shipping to the shared store resumed', { chain: this.chain, shipped_seq: this.shippedSeq });
          this.failing = false;
          this.schedule(this.intervalMs);
        },
        (err: Error) => {
          if (!this.failing) this.opts.logger.warn('evidence cannot be shipped to the shared store; the local log keeps it, retrying', { error: err.message });
          this.failing = true;
          this.schedule(Math.max(this.intervalMs, 5_000));
        },
      );
    }, ms);
    this.timer.unref();
  }

  private ship(): Promise<void> {
    const round = this.queue.then(() => this.shipAll());
    this.queue = round.catch(() => {});
    return round;
  }

  private async shipAll(): Promise<void> {
    if (this.fd === undefined) return;
    for (;;) {
      const end = this.opts.log.stats().syncedBytes;
      if (end <= this.pos) {
        this.caughtUpAt = Date.now();
        break;
      }
      await this.shipBatch(Math.min(end, this.pos + BATCH_BYTES));
    }
    await this.shipCheckpoints();
    await this.shipPolicies();
  }

  /** Each policy text once (few, small; the file name is the version's hash). */
  private async shipPolicies(): Promise<void> {
    const dir = this.opts.policiesDir;
    if (!this.policiesDue || !dir || !existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const m = /^([0-9a-f]{64})\.yaml$/.exec(name);
      if (!m || this.shippedPolicies.has(m[1]!)) continue;
      await this.opts.db.query('INSERT INTO phigate.policies (version, text) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING',
        [`sha256:${m[1]}`, readFileSync(join(dir, name), 'utf8')]);
      this.shippedPolicies.add(m[1]!);
    }
    this.policiesDue = false;
  }

  private async shipBatch(end: number): Promise<void> {
    const buf = preadSync(this.fd!, this.pos, end - this.pos);
    // One JSON parameter for the whole batch: serialized natively, where ten array parameters cost
    // node-postgres an escaping pass per element (measured: 14 -> 6 us of gateway CPU per record).
    const rows: (string | number | null)[][] = [];
    const recordings: { session: string; sha256: string; file: string }[] = [];
    let consumed = 0;
    let lastSeq = this.shippedSeq;
    for (;;) {
      const nl = buf.indexOf(10, consumed);
      if (nl === -1) break;
      const bytes = buf.subarray(consumed, nl);
      consumed = nl + 1;
      const rec = parseRecordLine(bytes);
      if (!rec || typeof rec['seq'] !== 'number') {
        throw new Error(`the local audit log has an unreadable line at byte ${this.pos + consumed - bytes.length - 1}; run phigate audit verify`);
      }
      const f = indexFields(rec);
      rows.push([
        rec['seq'], String(rec['at']), f.type, f.user ?? null, f.connection ?? null, f.session ?? null, f.decision ?? null,
        f.tables ? JSON.stringify(f.tables) : null, f.sql !== undefined ? sqlKey(f.sql) : null, bytes.toString('utf8'),
        // Unqualified lower-case names: what a table filter narrows on (the record still decides).
        f.tables ? JSON.stringify([...new Set(f.tables.map(tableFilterKey))]) : null,
      ]);
      lastSeq = rec['seq'];
      // Its policy text is in the policies directory by now (written when the record was).
      if (rec['type'] === 'policy.activated') this.policiesDue = true;
      const seal = rec['recording'] as { sha256?: unknown; file?: unknown } | undefined;
      if (rec['type'] === 'session.end' && seal && typeof seal.sha256 === 'string' && typeof rec['session'] === 'string') {
        recordings.push({ session: rec['session'], sha256: seal.sha256, file: join(this.opts.recordingsDir, recordingFileName(rec['session'])) });
      }
    }
    // A batch boundary inside a line: the rest comes with the next batch (a line longer than a batch cannot happen:
    // records are far smaller than BATCH_BYTES).
    if (consumed === 0) throw new Error(`an audit record longer than ${BATCH_BYTES} bytes at byte ${this.pos}`);
    const recs = recordings.map((r) => this.readRecording(r)).filter((r): r is NonNullable<typeof r> => r !== undefined);
    const newPos = this.pos + consumed;
    await this.opts.db.transaction(async (q) => {
      const inserted = await q(
        `INSERT INTO phigate.audit_records (chain, seq, at, type, usr, connection, session, decision, tables, sql_key, line, table_keys)
         SELECT $1, (r->>0)::bigint, (r->>1)::timestamptz, r->>2, r->>3, r->>4, r->>5, r->>6, (r->>7)::jsonb, r->>8, r->>9,
           (SELECT array_agg(k) FROM json_array_elements_text((r->>10)::json) AS k)
         FROM json_array_elements($2::json) AS r
         ON CONFLICT (chain, seq) DO NOTHING`,
        [this.chain, JSON.stringify(rows)]);
      if ((inserted.rowCount ?? 0) < rows.length) await this.checkSameRecords(q, rows);
      for (const r of recs) {
        await q('INSERT INTO phigate.recordings (session, chain, sha256, content) VALUES ($1, $2, $3, $4) ON CONFLICT (session) DO NOTHING',
          [r.session, this.chain, r.sha256, r.content]);
      }
      await q('UPDATE phigate.audit_chains SET shipped_seq = $2, shipped_bytes = $3, shipped_at = now() WHERE chain = $1', [this.chain, lastSeq, newPos]);
    });
    this.pos = newPos;
    this.shippedSeq = lastSeq;
  }

  /**
   * Records the store already had (shipping again from the start, after a restart that could not
   * resume) must be the very same lines. Different ones mean this log is not the one shipped before
   * (a data directory restored from an older copy): nothing is shipped over the store's copy, and
   * shipping stops here, saying why, rather than dropping this log's records silently.
   */
  private async checkSameRecords(q: (sql: string, params?: unknown[]) => Promise<{ rows: unknown[] }>, rows: (string | number | null)[][]): Promise<void> {
    const mine = new Map(rows.map((r) => [Number(r[0]), r[9]]));
    const existing = (await q('SELECT seq, line FROM phigate.audit_records WHERE chain = $1 AND seq = ANY($2::bigint[])', [this.chain, [...mine.keys()]])).rows as
      { seq: string; line: string }[];
    const differ = existing.filter((e) => mine.get(Number(e.seq)) !== e.line).map((e) => Number(e.seq)).sort((x, y) => x - y);
    if (differ.length > 0) {
      throw new Error(`the shared store holds other records for chain ${this.chain} (from record ${differ[0]}) than this replica's audit log: ` +
        'was its data directory restored from an older copy? The store keeps its records; give this replica a fresh data directory (a new chain) ' +
        'after saving this one, and compare both with phigate audit verify');
    }
  }

  /** A sealed recording as its seal says; one whose bytes no longer match is left for verify to report. */
  private readRecording(r: { session: string; sha256: string; file: string }): { session: string; sha256: string; content: Buffer } | undefined {
    if (!existsSync(r.file)) return undefined;
    const content = readFileSync(r.file);
    if (sha256Hex(content) !== r.sha256) {
      this.opts.logger.warn('a recording does not match its seal; not shipped', { session: r.session });
      return undefined;
    }
    return { session: r.session, sha256: r.sha256, content };
  }

  /** Signed checkpoints: small and append-only, shipped after the records they cover. */
  private async shipCheckpoints(): Promise<void> {
    const file = join(this.opts.log.dir, CHECKPOINTS_FILE);
    if (!existsSync(file)) return;
    // Only what was appended since the last round: the file grows for as long as the server runs.
    const size = statSync(file).size;
    if (size <= this.cpPos) return;
    const fd = openSync(file, 'r');
    let tail: Buffer;
    try {
      tail = preadSync(fd, this.cpPos, size - this.cpPos);
    } finally {
      closeSync(fd);
    }
    const end = tail.lastIndexOf(10) + 1;
    if (end === 0) return;
    const lines = tail.subarray(0, end).toString('utf8').split('\n').filter((l) => l !== '');
    const seqs: number[] = [];
    const kept: string[] = [];
    for (const l of lines) {
      const seq = (JSON.parse(l) as { seq?: unknown }).seq;
      // Only checkpoints of records already in the store: verify there must find what they sign.
      if (typeof seq !== 'number' || seq > this.shippedSeq) break;
      seqs.push(seq);
      kept.push(l);
    }
    if (kept.length === 0) return;
    const consumed = kept.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    await this.opts.db.transaction(async (q) => {
      await q(`INSERT INTO phigate.audit_checkpoints (chain, seq, line) SELECT $1, * FROM unnest($2::bigint[], $3::text[]) ON CONFLICT (chain, seq) DO NOTHING`,
        [this.chain, seqs, kept]);
      await q('UPDATE phigate.audit_chains SET checkpoint_bytes = $2 WHERE chain = $1', [this.chain, this.cpPos + consumed]);
    });
    this.cpPos += consumed;
  }
}
