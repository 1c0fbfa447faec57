// `phigate audit export`: the records of a time range as one self-contained bundle an auditor can
// verify offline, with nothing but the file (and, ideally, the server's public key pinned).
//
// Bundle format (NDJSON, one JSON document per line):
//   1.  {"bundle":"header","format":"phigate-audit-bundle","version":1,"created_at":…,"since":…,"until":…,
//        "range":{"first_seq":F,"last_seq":L}|null,"records":{"first_seq":A,"last_seq":B,"count":N},
//        "public_key":"<PEM>","key":"ed25519:…","canonical":"RFC 8785 (JCS)","hash":"sha256"}
//   2.  {"bundle":"checkpoint","seq":…,"hash":…,"at":…,"key":…,"sig":…}   every checkpoint of records A..B
//   3.  the log's lines for records A..B, byte for byte (their SHA-256 is what the chain links):
//        A = F-1 (the record before the range: its time shows nothing in the range was left out at the
//        start), B = the first checkpointed record at or after L (so a signature covers every record of
//        the range through the chain; records L+1..B show nothing was left out at the end)
//   4.  {"bundle":"policy","version":"sha256:…","text":"<YAML>"}   every policy version the records name,
//        and the one in force when the range began; sha256 of the text's canonical form = version
//   5.  {"bundle":"end","records":N,"checkpoints":C,"policies":P}   (a cut-off bundle has none)
// Record lines never contain a "bundle" member; everything else does.
import type { KeyObject } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { canonicalJson } from './canonical.js';
import { checkpointSignatureValid, keyFingerprint, parsePublicKey, publicKeyPem, type Checkpoint } from './keys.js';
import { preadSync } from './lines.js';
import { PUBLIC_KEY_FILE } from './log.js';
import { CHECKPOINTS_FILE, LOG_FILE, loadIndex, parseRecordLine, type LoadedIndex } from './search-index.js';
import { seqRange } from './search.js';
import { ENTRY_WORDS, typeCode } from './index-format.js';
import { ChainChecker, checkCheckpoints, parseCheckpoints, type ParsedCheckpoint, type VerifyProblem } from './verify.js';
import { policyVersion } from '../policy/version.js';

export const BUNDLE_FORMAT = 'phigate-audit-bundle';
export const BUNDLE_VERSION = 1;

export interface BundleHeader {
  bundle: 'header';
  format: typeof BUNDLE_FORMAT;
  version: number;
  created_at: string;
  since?: string;
  until?: string;
  /** Records whose time is in [since, until]; null when none are. */
  range: { first_seq: number; last_seq: number } | null;
  /** Every record line in the bundle (the range plus its anchors). */
  records: { first_seq: number; last_seq: number; count: number } | null;
  public_key?: string;
  key?: string;
  canonical: 'RFC 8785 (JCS)';
  hash: 'sha256';
  /** Policy versions the records name whose text the server did not have. */
  missing_policies?: string[];
}

export interface ExportOptions {
  since?: number;
  until?: number;
  /** Where policy texts are (`<data-dir>/policies`). */
  policiesDir?: string;
  index?: LoadedIndex;
}

export interface ExportSummary {
  header: BundleHeader;
  checkpoints: number;
  policies: number;
  /** Records of the range not covered by a checkpoint (the server had not signed them yet). */
  unanchored: boolean;
}

/** Where a bundle's records and policy texts come from: a local log, or a chain in the shared store. */
export interface BundleSource {
  /** Record lines first..last, byte for byte with their newlines, in slices. */
  lines(first: number, last: number): AsyncIterable<Buffer>;
  /** The policy version of the last policy.activated record before `seq`. */
  policyInForceBefore(seq: number): Promise<string | undefined>;
  policyText(version: string): Promise<string | undefined>;
}

/** What an export will contain, decided before a byte is written (so its audit record can say so). */
export interface ExportPlan {
  header: BundleHeader;
  checkpoints: ParsedCheckpoint[];
  /** Records first..last are copied (none when first > last). */
  first: number;
  last: number;
  source: BundleSource;
  unanchored: boolean;
}

export function planExport(auditDir: string, opts: ExportOptions = {}): ExportPlan {
  const idx = opts.index ?? loadIndex(auditDir);
  const cpFile = join(auditDir, CHECKPOINTS_FILE);
  const { checkpoints } = existsSync(cpFile) ? parseCheckpoints(readFileSync(cpFile, 'utf8'), cpFile) : { checkpoints: [] as ParsedCheckpoint[] };
  const pubFile = join(auditDir, PUBLIC_KEY_FILE);
  const pem = existsSync(pubFile) ? readFileSync(pubFile, 'utf8') : undefined;
  const [lo, hi] = timeRange(idx, opts.since, opts.until);
  const plan = planFromRange({ lo, hi, count: idx.count, checkpoints, since: opts.since, until: opts.until, pem, pemSource: pubFile });
  return { ...plan, source: localSource(auditDir, idx, opts.policiesDir) };
}

/**
 * The bundle's extent for records lo..hi of a chain of `count` records: from the record before the
 * range (its time shows nothing was left out at the start) to the first checkpoint at or after hi
 * (a signature covers every record of the range), with the checkpoints in between.
 */
export function planFromRange(r: {
  lo: number; hi: number; count: number; checkpoints: ParsedCheckpoint[]; since?: number; until?: number; pem?: string; pemSource: string;
}): Omit<ExportPlan, 'source'> {
  const inRange = r.lo <= r.hi;
  let first = 0;
  let last = -1;
  let anchorCp: ParsedCheckpoint | undefined;
  if (inRange) {
    first = Math.max(0, r.lo - 1);
    anchorCp = r.checkpoints.find((c) => c.seq >= r.hi && c.seq < r.count);
    last = anchorCp ? anchorCp.seq : r.count - 1;
  }
  const included = inRange ? r.checkpoints.filter((c) => c.seq >= first && c.seq <= last) : [];
  const header: BundleHeader = {
    bundle: 'header', format: BUNDLE_FORMAT, version: BUNDLE_VERSION, created_at: new Date().toISOString(),
    ...(r.since !== undefined ? { since: new Date(r.since).toISOString() } : {}),
    ...(r.until !== undefined ? { until: new Date(r.until).toISOString() } : {}),
    range: inRange ? { first_seq: r.lo, last_seq: r.hi } : null,
    records: inRange ? { first_seq: first, last_seq: last, count: last - first + 1 } : null,
    ...(r.pem ? { public_key: r.pem, key: keyFingerprint(parsePublicKey(r.pem, r.pemSource)) } : {}),
    canonical: 'RFC 8785 (JCS)', hash: 'sha256',
  };
  return { header, checkpoints: included, first, last, unanchored: inRange && !anchorCp };
}

/** A local log through its index: lines copied in slices of up to 4 MiB. */
function localSource(auditDir: string, idx: LoadedIndex, policiesDir: string | undefined): BundleSource {
  return {
    async *lines(first, last) {
      const fd = openSync(join(auditDir, LOG_FILE), 'r');
      try {
        let seq = first;
        while (seq <= last) {
          const start = idx.floats[seq * 6]!;
          let end = start;
          let k = seq;
          while (k <= last && end - start < 4 << 20) {
            end = idx.floats[k * 6]! + idx.words[k * ENTRY_WORDS + 4]!;
            k++;
          }
          yield preadSync(fd, start, end - start);
          seq = k;
        }
      } finally {
        closeSync(fd);
      }
    },
    policyInForceBefore: async (seq) => policyInForceBefore(idx, seq),
    async policyText(version) {
      const f = policiesDir ? join(policiesDir, `${version.replace(/^sha256:/, '')}.yaml`) : undefined;
      return f && existsSync(f) ? readFileSync(f, 'utf8') : undefined;
    },
  };
}

/** Writes the bundle for the range to `out` (a file stream or an HTTP response). */
export async function exportBundle(auditDir: string, out: Writable, opts: ExportOptions = {}): Promise<ExportSummary> {
  return writeBundle(planExport(auditDir, opts), out);
}

export async function writeBundle(plan: ExportPlan, out: Writable): Promise<ExportSummary> {
  const { header, first, last, source, checkpoints: included } = plan;
  const inRange = header.range !== null;
  await write(out, `${JSON.stringify(header)}\n`);
  for (const c of included) {
    const { line: _line, ...cp } = c;
    await write(out, `${canonicalJson({ bundle: 'checkpoint', ...cp })}\n`);
  }
  const versions = new Set<string>();
  if (inRange) {
    const inForce = await source.policyInForceBefore(first);
    if (inForce) versions.add(inForce);
    // Byte for byte: the hashes are over these bytes.
    for await (const chunk of source.lines(first, last)) {
      collectPolicies(chunk, versions);
      await write(out, chunk);
    }
  }
  const missing: string[] = [];
  let policies = 0;
  for (const v of [...versions].sort()) {
    const text = await source.policyText(v);
    if (text === undefined) {
      missing.push(v);
      continue;
    }
    policies++;
    await write(out, `${JSON.stringify({ bundle: 'policy', version: v, text })}\n`);
  }
  await write(out, `${JSON.stringify({ bundle: 'end', records: header.records?.count ?? 0, checkpoints: included.length, policies, ...(missing.length ? { missing_policies: missing } : {}) })}\n`);
  if (missing.length) header.missing_policies = missing;
  return { header, checkpoints: included.length, policies, unanchored: plan.unanchored };
}

/** exportBundle to a file (mode 0600: the bundle names who did what). */
export async function exportBundleToFile(auditDir: string, file: string, opts: ExportOptions = {}): Promise<ExportSummary> {
  const out = createWriteStream(file, { mode: 0o600 });
  try {
    const summary = await exportBundle(auditDir, out, opts);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    return summary;
  } catch (err) {
    out.destroy();
    throw err;
  }
}

function write(out: Writable, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = out.write(data, (err) => (err ? reject(err) : undefined));
    if (ok) resolve();
    else {
      out.once('drain', resolve);
      out.once('error', reject);
    }
  });
}

/** [lo, hi] of records whose time is in [since, until], for any log (bisection when time is ordered). */
function timeRange(idx: LoadedIndex, since: number | undefined, until: number | undefined): [number, number] {
  if (idx.monotonic) return seqRange(idx, since, until);
  let lo = idx.count;
  let hi = -1;
  for (let s = 0; s < idx.count; s++) {
    const at = idx.floats[s * 6 + 1]!;
    if ((since === undefined || at >= since) && (until === undefined || at <= until)) {
      lo = Math.min(lo, s);
      hi = s;
    }
  }
  return [lo, hi];
}

/** The policy version of the last policy.activated record before `seq`. */
function policyInForceBefore(idx: LoadedIndex, seq: number): string | undefined {
  const code = typeCode('policy.activated');
  const fd = openSync(idx.logFile, 'r');
  try {
    for (let s = seq - 1; s >= 0; s--) {
      if ((idx.words[s * ENTRY_WORDS + 10]! & 0xff) !== code) continue;
      const line = preadSync(fd, idx.floats[s * 6]!, idx.words[s * ENTRY_WORDS + 4]!);
      const rec = parseRecordLine(line.subarray(0, line.length - 1));
      return typeof rec?.['policy'] === 'string' ? rec['policy'] : undefined;
    }
  } finally {
    closeSync(fd);
  }
  return undefined;
}

const POLICY_FIELD = /"policy":"(sha256:[0-9a-f]{64})"/g;

function collectPolicies(chunk: Buffer, into: Set<string>): void {
  for (const m of chunk.toString('utf8').matchAll(POLICY_FIELD)) into.add(m[1]!);
}

export interface BundleReport {
  ok: boolean;
  file: string;
  header?: BundleHeader;
  records: number;
  range: { first_seq: number; last_seq: number } | null;
  checkpoints: number;
  policies: number;
  /** Fingerprint of the key signatures were checked with. */
  key?: string;
  /** The bundle's own key differs from the pinned one. */
  keyMismatch?: boolean;
  problems: VerifyProblem[];
  warnings: string[];
}

/**
 * Verifies a bundle offline: the chain through every record line, every checkpoint's signature
 * (with `publicKey` when pinned, else the bundle's own), that a checkpoint covers the whole range,
 * that the anchoring records show the range is complete, and every policy text against its version.
 */
export async function verifyBundle(file: string, opts: { publicKey?: KeyObject } = {}): Promise<BundleReport> {
  const problems: VerifyProblem[] = [];
  const warnings: string[] = [];
  const report = (): BundleReport => ({
    ok: problems.length === 0, file, header, records: checker?.count ?? 0, range: header?.range ?? null,
    checkpoints: checkpoints.length, policies: policies.size, key: key ? keyFingerprint(key) : undefined,
    ...(keyMismatch ? { keyMismatch } : {}), problems, warnings,
  });
  let header: BundleHeader | undefined;
  let checker: ChainChecker | undefined;
  let key: KeyObject | undefined = opts.publicKey;
  let keyMismatch = false;
  const checkpoints: ParsedCheckpoint[] = [];
  const policies = new Map<string, string>();
  const referenced = new Set<string>();
  const times = new Map<number, number>();
  let end: { records?: unknown; checkpoints?: unknown } | undefined;
  let lineNo = 0;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const text of rl) {
    lineNo++;
    if (lineNo === 1) {
      try {
        header = JSON.parse(text) as BundleHeader;
      } catch {
        header = undefined;
      }
      if (header?.bundle !== 'header' || header.format !== BUNDLE_FORMAT) {
        problems.push({ code: 'format', file, line: 1, message: `line 1: not a ${BUNDLE_FORMAT} header (is this an audit export?)` });
        return report();
      }
      if (header.public_key) {
        const own = parsePublicKey(header.public_key, `${file} header`);
        if (key && publicKeyPem(key) !== publicKeyPem(own)) keyMismatch = true;
        key ??= own;
      }
      continue;
    }
    if (end) {
      problems.push({ code: 'format', file, line: lineNo, message: `line ${lineNo}: content after the end line` });
      break;
    }
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(text) as Record<string, unknown>;
    } catch {
      v = {};
    }
    switch (v['bundle']) {
      case 'checkpoint': {
        const { bundle: _b, ...c } = v;
        const parsed = parseCheckpoints(`${JSON.stringify(c)}\n`, file);
        if (parsed.checkpoints[0]) checkpoints.push({ ...parsed.checkpoints[0], line: lineNo });
        else problems.push({ code: 'checkpoint', file, line: lineNo, message: `line ${lineNo}: not a checkpoint` });
        break;
      }
      case 'policy':
        if (typeof v['version'] === 'string' && typeof v['text'] === 'string') policies.set(v['version'], v['text']);
        else problems.push({ code: 'format', file, line: lineNo, message: `line ${lineNo}: not a policy entry` });
        break;
      case 'end':
        end = v;
        break;
      case undefined: {
        const bytes = Buffer.from(text, 'utf8');
        // Checkpoints precede the records, so the checker knows which hashes to keep. The chain starts
        // at the first record's own link: nothing before it is in the bundle, and its hash is what the
        // next record names, so altering it still shows.
        checker ??= new ChainChecker({
          file, firstSeq: header?.records?.first_seq ?? 0, want: new Set(checkpoints.map((c) => c.seq)),
          prev: String(parseRecordLine(bytes)?.['prev'] ?? ''),
        });
        const rec = checker.check(bytes, lineNo);
        if (rec) {
          times.set(rec['seq'] as number, Date.parse(String(rec['at'])));
          if (typeof rec['policy'] === 'string' && rec['type'] === 'statement') referenced.add(rec['policy']);
        }
        break;
      }
      default:
        problems.push({ code: 'format', file, line: lineNo, message: `line ${lineNo}: unknown bundle entry ${JSON.stringify(String(v['bundle']).slice(0, 40))}` });
    }
  }
  if (!header) {
    problems.push({ code: 'format', file, message: `${file} is empty` });
    return report();
  }
  checker ??= new ChainChecker({ file, firstSeq: header.records?.first_seq ?? 0, want: new Set(), prev: '' });
  problems.push(...checker.problems);
  if (!end) problems.push({ code: 'truncated', file, line: lineNo, message: `line ${lineNo}: the bundle has no end line (cut off)` });
  else if (end.records !== checker.count) problems.push({ code: 'truncated', file, message: `the end line says ${String(end.records)} records, the bundle holds ${checker.count}` });
  const r = header.records;
  if (r && checker.count !== r.count) {
    problems.push({ code: 'seq', file, message: `the header announces records ${r.first_seq}..${r.last_seq} (${r.count}), the bundle holds ${checker.count}` });
  }
  // Signatures, and that each checkpoint names a record of the bundle with the hash it signed.
  if (!key) {
    problems.push({ code: 'key', file, message: 'the bundle carries no public key and none was given (--public-key FILE)' });
  } else if (checkpoints.length > 0 && r) {
    const firstLine = 2 + checkpoints.length;
    problems.push(...checkCheckpoints(checkpoints, key, checker.hashes, {
      firstSeq: r.first_seq, lastSeq: checker.last?.seq ?? r.first_seq - 1, file, lineOf: (s) => firstLine + (s - r.first_seq),
    }, file));
  }
  if (keyMismatch) warnings.push('the bundle names a different public key than the one given: signatures were checked with the given key');
  if (header.range) {
    const covered = checkpoints.some((c) => c.seq >= header!.range!.last_seq && checkpointSignatureOk(c, key));
    if (!covered) {
      warnings.push(`records ${header.range.first_seq}..${header.range.last_seq} are not covered by a signed checkpoint (exported before the server signed them): their links verify, their signature cannot`);
    }
    const since = header.since ? Date.parse(header.since) : undefined;
    const until = header.until ? Date.parse(header.until) : undefined;
    for (const [seq, at] of times) {
      const inside = seq >= header.range.first_seq && seq <= header.range.last_seq;
      const fits = (since === undefined || at >= since) && (until === undefined || at <= until);
      if (inside !== fits) {
        problems.push({
          code: 'range', file, seq,
          message: `record ${seq}: its time ${new Date(at).toISOString()} is ${fits ? 'inside' : 'outside'} the exported range but the bundle places it ${inside ? 'inside' : 'outside'}`,
        });
      }
    }
  }
  for (const [version, text] of policies) {
    let actual: string | undefined;
    try {
      actual = policyVersion(text);
    } catch {
      actual = undefined;
    }
    if (actual !== version) problems.push({ code: 'policy', file, message: `policy ${version}: its text does not hash to its version (altered)` });
  }
  for (const v of referenced) if (!policies.has(v)) warnings.push(`policy ${v} is named by records but its text is not in the bundle`);
  return report();
}

function checkpointSignatureOk(c: Checkpoint, key: KeyObject | undefined): boolean {
  return key !== undefined && checkpointSignatureValid(c, key);
}
