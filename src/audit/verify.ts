// `phigate audit verify`: proves the log is what the server wrote. Checks every record's canonical
// form, seq and link to its predecessor, every checkpoint's Ed25519 signature, that every checkpoint
// names a record the log still has with the hash it signed (so truncation and rewriting show), and,
// given the recordings directory, every recording against the seal in its session.end record.
// The checks are pure (ChainChecker, checkCheckpoints); verifyLog only reads the files.
import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { GENESIS_PREV, canonicalJson, canonicalRecord, sha256Hex } from './canonical.js';
import { checkpointSignatureValid, keyFingerprint, parsePublicKey, type Checkpoint } from './keys.js';
import { readLines } from './lines.js';
import { PUBLIC_KEY_FILE } from './log.js';
import { CHECKPOINTS_FILE, LOG_FILE } from './search-index.js';
import { plural } from '../ui/plural.js';

export interface VerifyProblem {
  /** chain | canonical | seq | prev | format | torn | checkpoint | signature | truncated | recording | key */
  code: string;
  /** One line, naming the record (seq), line and file. */
  message: string;
  file: string;
  seq?: number;
  line?: number;
}

export interface VerifyReport {
  ok: boolean;
  file: string;
  /** Complete records read. */
  records: number;
  head?: { seq: number; hash: string };
  checkpoints: number;
  lastCheckpoint?: { seq: number; at: string };
  /** Records after the last checkpoint: intact as far as links go, but not yet signed. */
  unanchored: number;
  /** Fingerprint of the key checkpoints were checked with. */
  key?: string;
  recordings?: { checked: number; failed: number };
  /** With a shared store: every replica's chain as the store holds it (their problems are in `problems` too). */
  replicas?: ChainReport[];
  problems: VerifyProblem[];
  warnings: string[];
  elapsedMs: number;
}

/** One replica's chain in the shared store, as `phigate audit verify` reports it (shared-verify.ts). */
export interface ChainReport extends Pick<VerifyReport, 'ok' | 'records' | 'head' | 'checkpoints' | 'lastCheckpoint' | 'unanchored' | 'problems' | 'warnings'> {
  /** The chain's name: the fingerprint of the replica's checkpoint key. */
  chain: string;
  /** This replica's own chain. */
  own: boolean;
  recordings: { checked: number; failed: number };
  /** When the replica last shipped (ISO), for spotting one that stopped. */
  shippedAt?: string;
}

/** Reports stop growing here: after this many, the log is plainly not intact. */
const MAX_PROBLEMS = 50;

/** A session.end record's seal, collected while the chain is checked. */
export interface SealRef {
  seq: number;
  session: string;
  sha256: string;
  file: string;
}

/**
 * Checks records one line at a time: canonical form, seq, prev. After a problem it carries on from
 * the record as found, so one tampered record yields one problem, not one per later record.
 */
export class ChainChecker {
  private expectSeq: number;
  private prevHash: string;
  /** Hashes of the records checkpoints name (filled as they pass). */
  readonly hashes = new Map<number, string>();
  readonly seals: SealRef[] = [];
  readonly problems: VerifyProblem[] = [];
  count = 0;
  last?: { seq: number; hash: string; at: string };

  constructor(private readonly opts: { file: string; firstSeq: number; prev: string; want: ReadonlySet<number> }) {
    this.expectSeq = opts.firstSeq;
    this.prevHash = opts.prev;
  }

  /** Checks one line's bytes (without newline); `line` is its 1-based number in the file. */
  check(bytes: Buffer, line: number): Record<string, unknown> | undefined {
    const text = bytes.toString('utf8');
    const hash = sha256Hex(bytes);
    const where = (seq: number): string => `record ${seq} (line ${line})`;
    let rec: Record<string, unknown>;
    try {
      const v = JSON.parse(text) as unknown;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      rec = v as Record<string, unknown>;
    } catch {
      this.problem({ code: 'format', line, seq: this.expectSeq, message: `line ${line}: not a JSON record (expected record ${this.expectSeq}; altered or damaged)` });
      this.prevHash = hash;
      this.expectSeq++;
      return undefined;
    }
    const seq = rec['seq'];
    if (!Number.isSafeInteger(seq)) {
      this.problem({ code: 'format', line, seq: this.expectSeq, message: `line ${line}: record has no valid seq (expected record ${this.expectSeq})` });
      this.prevHash = hash;
      this.expectSeq++;
      return undefined;
    }
    const s = seq as number;
    let bad = false;
    if (s !== this.expectSeq) {
      bad = true;
      const what = s > this.expectSeq
        ? `record${s - this.expectSeq > 1 ? `s ${this.expectSeq}..${s - 1} are` : ` ${this.expectSeq} is`} missing`
        : 'records are duplicated or out of order';
      this.problem({ code: 'seq', line, seq: s, message: `${where(s)}: expected record ${this.expectSeq} here; ${what}` });
    } else if (rec['prev'] !== this.prevHash) {
      bad = true;
      this.problem({
        code: 'prev', line, seq: s,
        message: s === 0
          ? `${where(s)}: prev is not the genesis value (64 zeros)`
          : `${where(s)}: prev hash does not match record ${s - 1} (record ${s - 1} or this record was altered)`,
      });
    }
    if (!bad) {
      let canonical: string | undefined;
      try {
        // The append path's serializer (key order cached per shape); the same canonical form.
        canonical = typeof rec['at'] === 'string' && typeof rec['prev'] === 'string'
          ? canonicalRecord(rec, s, rec['at'], rec['prev'])
          : canonicalJson(rec);
      } catch {
        canonical = undefined;
      }
      if (canonical !== text) {
        this.problem({ code: 'canonical', line, seq: s, message: `${where(s)}: not in canonical form (altered after it was written)` });
      } else if (typeof rec['at'] !== 'string' || !Number.isFinite(Date.parse(rec['at'])) || typeof rec['type'] !== 'string') {
        this.problem({ code: 'format', line, seq: s, message: `${where(s)}: missing or invalid at/type` });
      }
    }
    if (this.opts.want.has(s)) this.hashes.set(s, hash);
    if (rec['type'] === 'session.end') {
      const r = rec['recording'] as { sha256?: unknown; file?: unknown } | undefined;
      if (r && typeof r.sha256 === 'string' && typeof r.file === 'string') {
        this.seals.push({ seq: s, session: String(rec['session']), sha256: r.sha256, file: r.file });
      }
    }
    this.prevHash = hash;
    this.expectSeq = s + 1;
    this.count++;
    this.last = { seq: s, hash, at: String(rec['at']) };
    return rec;
  }

  torn(bytes: number, line: number): void {
    this.problem({
      code: 'torn', line, seq: this.expectSeq,
      message: `line ${line}: incomplete final record (${bytes} bytes without a newline): the server stopped while writing; opening the log repairs it`,
    });
  }

  private problem(p: Omit<VerifyProblem, 'file'>): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ file: this.opts.file, ...p });
  }
}

export interface ParsedCheckpoint extends Checkpoint {
  /** 1-based line in its file. */
  line: number;
}

/** Parses checkpoints.jsonl text; malformed lines become problems. */
export function parseCheckpoints(text: string, file: string): { checkpoints: ParsedCheckpoint[]; problems: VerifyProblem[] } {
  const checkpoints: ParsedCheckpoint[] = [];
  const problems: VerifyProblem[] = [];
  const lines = text.split('\n');
  const torn = lines.pop();
  lines.forEach((l, i) => {
    const line = i + 1;
    try {
      const c = JSON.parse(l) as Partial<Checkpoint>;
      if (!Number.isSafeInteger(c.seq) || typeof c.hash !== 'string' || typeof c.at !== 'string' || typeof c.sig !== 'string') throw new Error('fields');
      checkpoints.push({ seq: c.seq!, hash: c.hash, at: c.at, key: String(c.key ?? ''), sig: c.sig, line });
    } catch {
      problems.push({ code: 'checkpoint', file, line, message: `checkpoint at line ${line} of ${basename(file)}: not a checkpoint (altered or damaged)` });
    }
  });
  if (torn) problems.push({ code: 'torn', file, line: lines.length + 1, message: `line ${lines.length + 1} of ${basename(file)}: incomplete final checkpoint` });
  return { checkpoints, problems };
}

/**
 * Signature and order of every checkpoint, and that each names a record of the chain with the hash
 * it signed. `hashes` holds the chain's hashes at checkpoint seqs; `lastSeq` is the chain's end.
 */
export function checkCheckpoints(
  checkpoints: readonly ParsedCheckpoint[], publicKey: KeyObject, hashes: ReadonlyMap<number, string>,
  chain: { firstSeq: number; lastSeq: number; file: string; lineOf: (seq: number) => number; brokenAt?: number },
  cpFile: string,
): VerifyProblem[] {
  const problems: VerifyProblem[] = [];
  const fp = keyFingerprint(publicKey);
  let prevSeq = -1;
  for (const c of checkpoints) {
    const name = `checkpoint at line ${c.line} of ${basename(cpFile)} (record ${c.seq})`;
    if (!checkpointSignatureValid(c, publicKey)) {
      const other = c.key && c.key !== fp ? `it names key ${c.key}, ` : '';
      problems.push({ code: 'signature', file: cpFile, line: c.line, seq: c.seq, message: `${name}: signature does not verify with ${fp} (${other}forged or altered)` });
      continue;
    }
    if (c.seq <= prevSeq) {
      problems.push({ code: 'checkpoint', file: cpFile, line: c.line, seq: c.seq, message: `${name}: out of order (after a checkpoint of record ${prevSeq})` });
    }
    prevSeq = Math.max(prevSeq, c.seq);
    if (c.seq < chain.firstSeq) continue;
    if (c.seq > chain.lastSeq) {
      problems.push({
        code: 'truncated', file: chain.file, seq: c.seq, line: chain.lineOf(chain.lastSeq + 1),
        message: chain.lastSeq < chain.firstSeq
          ? `${name}: the log has no records, but record ${c.seq} was signed: the log was truncated`
          : `${name}: the log ends at record ${chain.lastSeq} (line ${chain.lineOf(chain.lastSeq)}): records ${chain.lastSeq + 1}..${c.seq} were removed (log truncated)`,
      });
      continue;
    }
    const h = hashes.get(c.seq);
    if (h === undefined) continue; // the chain is already reported broken before this record
    if (h !== c.hash) {
      problems.push({
        code: 'checkpoint', file: chain.file, seq: c.seq, line: chain.lineOf(c.seq),
        message: `record ${c.seq} (line ${chain.lineOf(c.seq)}): hash differs from the one signed by ${name} (the log was rewritten)`,
      });
    }
  }
  return problems;
}

/** Whether a recording file still has the seal its session.end record holds. */
export async function checkRecordingSeal(recordingsDir: string, seal: SealRef, logFile: string): Promise<VerifyProblem | undefined> {
  const where = `recording of session ${seal.session} (sealed in record ${seal.seq})`;
  // The seal names a file inside the recordings directory; anything else is not ours to open.
  if (seal.file !== basename(seal.file) || seal.file.startsWith('.')) {
    return { code: 'recording', file: logFile, seq: seal.seq, message: `${where}: invalid file name ${JSON.stringify(seal.file)}` };
  }
  const path = join(recordingsDir, seal.file);
  if (!existsSync(path)) return { code: 'recording', file: path, seq: seal.seq, message: `${where}: ${path} is missing` };
  const actual = await hashFile(path);
  if (actual !== seal.sha256) {
    return { code: 'recording', file: path, seq: seal.seq, message: `${where}: SHA-256 of ${path} does not match the seal (altered after the session ended)` };
  }
  return undefined;
}

export function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
}

export interface VerifyOptions {
  /** The key to check signatures with (pin it); default: `<audit dir>/public-key.pem`. */
  publicKey?: KeyObject;
  /** Also check every sealed recording in this directory. */
  recordingsDir?: string;
  /**
   * A live log: where its last complete record ends, asked after the checkpoints are read (so every
   * checkpoint read names a record before it, and a record being written is not taken as torn).
   */
  endOffset?: () => number;
}

/** Verifies the log in `auditDir`. Reads asynchronously in slices so a server stays responsive. */
export async function verifyLog(auditDir: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const file = join(auditDir, LOG_FILE);
  const cpFile = join(auditDir, CHECKPOINTS_FILE);
  const warnings: string[] = [];
  const problems: VerifyProblem[] = [];
  let publicKey = opts.publicKey;
  const pubFile = join(auditDir, PUBLIC_KEY_FILE);
  if (!publicKey && existsSync(pubFile)) {
    try {
      publicKey = parsePublicKey(readFileSync(pubFile, 'utf8'), pubFile);
    } catch (err) {
      problems.push({ code: 'key', file: pubFile, message: (err as Error).message });
    }
  }
  const cp = existsSync(cpFile) ? parseCheckpoints(readFileSync(cpFile, 'utf8'), cpFile) : { checkpoints: [], problems: [] };
  if (!existsSync(file)) {
    return {
      ok: false, file, records: 0, checkpoints: cp.checkpoints.length, unanchored: 0, warnings,
      problems: [{ code: 'format', file, message: `${file} does not exist (is this an audit directory? expected <data-dir>/audit)` }],
      elapsedMs: performance.now() - started,
    };
  }
  const checker = new ChainChecker({ file, firstSeq: 0, prev: GENESIS_PREV, want: new Set(cp.checkpoints.map((c) => c.seq)) });
  const end = opts.endOffset?.() ?? Infinity;
  let lineNo = 0;
  for await (const line of readLines(file, 0, 256 * 1024, end)) {
    lineNo++;
    if (!line.complete) checker.torn(line.bytes.length, lineNo);
    else checker.check(line.bytes, lineNo);
  }
  problems.push(...checker.problems, ...cp.problems);
  const lastSeq = checker.last?.seq ?? -1;
  if (cp.checkpoints.length > 0) {
    if (!publicKey) {
      problems.push({ code: 'key', file: pubFile, message: `no public key to check ${cp.checkpoints.length} checkpoint signatures with (${pubFile} is missing; pass --public-key FILE)` });
    } else {
      problems.push(...checkCheckpoints(cp.checkpoints, publicKey, checker.hashes, { firstSeq: 0, lastSeq, file, lineOf: (s) => s + 1 }, cpFile));
    }
  } else if (checker.count > 0) {
    warnings.push('no signed checkpoints: truncation or a rewritten log cannot be detected (does the server have its signing key?)');
  }
  let recordings: VerifyReport['recordings'];
  if (opts.recordingsDir) {
    recordings = { checked: 0, failed: 0 };
    for (const seal of checker.seals) {
      recordings.checked++;
      const p = await checkRecordingSeal(opts.recordingsDir, seal, file);
      if (p) {
        recordings.failed++;
        problems.push(p);
      }
    }
  }
  const lastCp = cp.checkpoints.at(-1);
  const unanchored = lastCp ? Math.max(0, lastSeq - lastCp.seq) : checker.count;
  if (lastCp && unanchored > 0) warnings.push(`${plural(unanchored, 'record')} after the last checkpoint (record ${lastCp.seq}) ${unanchored === 1 ? 'is' : 'are'} not signed yet`);
  // Problems in file order: the first one is where the log first fails.
  problems.sort((a, b) => rank(a, file) - rank(b, file));
  return {
    ok: problems.length === 0, file, records: checker.count, head: checker.last ? { seq: checker.last.seq, hash: checker.last.hash } : undefined,
    checkpoints: cp.checkpoints.length, lastCheckpoint: lastCp ? { seq: lastCp.seq, at: lastCp.at } : undefined, unanchored,
    key: publicKey ? keyFingerprint(publicKey) : undefined, recordings, problems, warnings, elapsedMs: performance.now() - started,
  };
}

/** Orders problems by their line in the log; a missing key first, other files' problems last. */
function rank(p: VerifyProblem, logFile: string): number {
  if (p.code === 'key') return -1;
  return p.file === logFile && p.line !== undefined ? p.line : Number.MAX_SAFE_INTEGER;
}

export function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  if (r.ok) {
    lines.push(`audit log intact: ${plural(r.records, 'record')}, ${plural(r.checkpoints, 'signed checkpoint')}${r.key ? ` (key ${r.key})` : ''}`);
    if (r.head) lines.push(`  head        record ${r.head.seq}  ${r.head.hash}`);
    if (r.lastCheckpoint) lines.push(`  checkpoint  record ${r.lastCheckpoint.seq}  signed ${r.lastCheckpoint.at}`);
    if (r.recordings) lines.push(`  recordings  ${r.recordings.checked} sealed, all match`);
  } else {
    lines.push(`audit log NOT intact: ${r.problems.length}${r.problems.length >= MAX_PROBLEMS ? '+' : ''} ${r.problems.length === 1 ? 'problem' : 'problems'}; first: ${r.problems[0]?.message ?? ''}`);
    for (const p of r.problems.slice(1, 10)) lines.push(`  also: ${p.message}`);
  }
  if (r.replicas) {
    lines.push(`  shared store  ${plural(r.replicas.length, 'replica chain')}`);
    for (const c of r.replicas) {
      const what = `${plural(c.records, 'record')}, ${plural(c.checkpoints, 'checkpoint')}, ${plural(c.recordings.checked, 'recording')}`;
      lines.push(`    ${c.chain}${c.own ? ' (this replica)' : ''}  ${what}: ${c.ok ? 'intact' : `NOT intact: ${c.problems[0]?.message ?? ''}`}`);
      for (const w of c.warnings) lines.push(`      warning: ${w}`);
    }
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
