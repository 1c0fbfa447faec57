// Tamper tests: every way of altering the log an auditor must catch, each reported with the record,
// line and file where it first fails. A fresh signed log per test (300 records, checkpoints every 50).
import { beforeEach, afterEach, describe, expect, it } from 'vitest';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/log.js';
import { canonicalJson, sha256Hex } from '../../src/audit/canonical.js';
import { signCheckpoint } from '../../src/audit/keys.js';
import { verifyLog, type VerifyReport } from '../../src/audit/verify.js';
import { statementEvent, tempDir } from './helpers.js';

const N = 300;
let d: string;
let cleanup: () => void;
let key: KeyObject;

beforeEach(async () => {
  ({ dir: d, cleanup } = tempDir());
  key = generateKeyPairSync('ed25519').privateKey;
  const log = AuditLog.open(d, { signingKey: key, checkpointEvery: 50, syncIntervalMs: 1 });
  for (let i = 0; i < N; i++) {
    log.append(statementEvent(i));
    if (i % 10 === 9) await log.synced();
  }
  await log.close();
});
afterEach(() => cleanup());

const file = (): string => join(d, 'audit.jsonl');
const readLines = (): string[] => readFileSync(file(), 'utf8').split('\n').slice(0, -1);
const writeLines = (ls: string[]): void => writeFileSync(file(), `${ls.join('\n')}\n`);

async function failsAt(re: RegExp): Promise<VerifyReport> {
  const r = await verifyLog(d);
  expect(r.ok).toBe(false);
  expect(r.problems[0]!.message).toMatch(re);
  return r;
}

describe('audit verify', () => {
  it('accepts the untouched log', async () => {
    const r = await verifyLog(d);
    expect(r).toMatchObject({ ok: true, records: N, unanchored: 0, problems: [] });
    expect(r.checkpoints).toBeGreaterThanOrEqual(N / 50);
  });

  it('detects one changed byte in any record, naming where', async () => {
    const original = readLines();
    // First, middle, a checkpointed one, the last: a byte inside the statement text.
    for (const k of [0, 1, 137, 149, 250, N - 1]) {
      const ls = [...original];
      const at = ls[k]!.indexOf('"sql":"') + 8;
      ls[k] = ls[k]!.slice(0, at) + 'X' + ls[k]!.slice(at + 1);
      writeLines(ls);
      const r = await verifyLog(d);
      expect(r.ok, `byte changed in record ${k}`).toBe(false);
      const first = r.problems[0]!;
      if (k === N - 1) {
        // Nothing follows the last record: the final checkpoint's signed hash catches it.
        expect(first.message).toBe(`record ${k} (line ${k + 1}): hash differs from the one signed by checkpoint at line ${r.checkpoints} of checkpoints.jsonl (record ${k}) (the log was rewritten)`);
      } else {
        expect(first.message).toBe(`record ${k + 1} (line ${k + 2}): prev hash does not match record ${k} (record ${k} or this record was altered)`);
      }
    }
    // A byte that breaks the JSON.
    const ls = [...original];
    ls[42] = ls[42]!.replace('{', '[');
    writeLines(ls);
    await failsAt(/^line 43: not a JSON record \(expected record 42; altered or damaged\)$/);
    // A byte that keeps the hash chain but not the canonical form cannot exist: the line is what is hashed.
    // A change of the seq digit alone.
    const ls2 = [...original];
    ls2[7] = ls2[7]!.replace('"seq":7', '"seq":8');
    writeLines(ls2);
    await failsAt(/^record 8 \(line 8\): expected record 7 here; records are duplicated or out of order|^record 8 \(line 8\): expected record 7/);
  });

  it('detects a deleted record', async () => {
    const ls = readLines();
    ls.splice(120, 1);
    writeLines(ls);
    const r = await failsAt(/^record 121 \(line 121\): expected record 120 here; record 120 is missing$/);
    expect(r.problems[0]).toMatchObject({ code: 'seq', seq: 121, line: 121 });
  });

  it('detects a deleted record whose successors were renumbered and relinked (a rewrite) through the checkpoints', async () => {
    // A careful forger drops record 120 and recomputes seq and prev of everything after it.
    const recs = readLines().map((l) => JSON.parse(l) as Record<string, unknown>);
    recs.splice(120, 1);
    let prev = sha256Hex(canonicalJson(recs[119]));
    const out = recs.map((r, i) => {
      if (i < 120) return canonicalJson(r);
      const line = canonicalJson({ ...r, seq: i, prev });
      prev = sha256Hex(line);
      return line;
    });
    writeLines(out);
    const r = await failsAt(/^record 1\d\d \(line 1\d\d\): hash differs from the one signed by checkpoint at line \d+ of checkpoints.jsonl \(record 1\d\d\) \(the log was rewritten\)$/);
    expect(r.problems[0]!.seq).toBeGreaterThanOrEqual(120);
    expect(r.problems.some((p) => p.code === 'truncated')).toBe(true);
  });

  it('detects two swapped records', async () => {
    const ls = readLines();
    [ls[200], ls[201]] = [ls[201]!, ls[200]!];
    writeLines(ls);
    const r = await failsAt(/^record 201 \(line 201\): expected record 200 here; record 200 is missing$/);
    expect(r.problems[1]!.message).toBe('record 200 (line 202): expected record 202 here; records are duplicated or out of order');
  });

  it('detects a truncated tail', async () => {
    const ls = readLines();
    writeLines(ls.slice(0, N - 5));
    const r = await failsAt(new RegExp(`^checkpoint at line \\d+ of checkpoints.jsonl \\(record ${N - 1}\\): the log ends at record ${N - 6} \\(line ${N - 5}\\): records ${N - 5}..${N - 1} were removed \\(log truncated\\)$`));
    expect(r.problems[0]).toMatchObject({ code: 'truncated' });
    // Cut in the middle of a line: the torn line is named as well.
    truncateSync(file(), readFileSync(file()).length - 10);
    const r2 = await verifyLog(d);
    expect(r2.problems.map((p) => p.message).join('\n')).toMatch(new RegExp(`line ${N - 5}: incomplete final record`));
  });

  it('detects a checkpoint forged with another key', async () => {
    const ls = readLines();
    const last = JSON.parse(ls.at(-1)!) as { seq: number };
    const forger = generateKeyPairSync('ed25519').privateKey;
    const cpCount = readFileSync(join(d, 'checkpoints.jsonl'), 'utf8').split('\n').filter(Boolean).length;
    const forged = signCheckpoint({ seq: last.seq, hash: sha256Hex(ls.at(-1)!), at: new Date().toISOString() }, forger);
    appendFileSync(join(d, 'checkpoints.jsonl'), `${canonicalJson(forged)}\n`);
    const r = await failsAt(new RegExp(`^checkpoint at line ${cpCount + 1} of checkpoints.jsonl \\(record ${last.seq}\\): signature does not verify with ed25519:[0-9a-f]{16} \\(it names key ed25519:[0-9a-f]{16}, forged or altered\\)$`));
    expect(r.problems[0]).toMatchObject({ code: 'signature', line: cpCount + 1 });
  });

  it('a log rewritten and re-signed with another key fails against the pinned public key', async () => {
    const forger = generateKeyPairSync('ed25519').privateKey;
    const ls = readLines();
    const last = JSON.parse(ls.at(-1)!) as { seq: number };
    writeFileSync(join(d, 'checkpoints.jsonl'), `${canonicalJson(signCheckpoint({ seq: last.seq, hash: sha256Hex(ls.at(-1)!), at: new Date().toISOString() }, forger))}\n`);
    // The files alone now agree with each other (the forger also replaced public-key.pem) ...
    const { publicKeyPem } = await import('../../src/audit/keys.js');
    writeFileSync(join(d, 'public-key.pem'), publicKeyPem(forger));
    expect((await verifyLog(d)).ok).toBe(true);
    // ... but not with the key the auditor pinned from `phigate server --print-public-key`.
    const r = await verifyLog(d, { publicKey: key });
    expect(r.ok).toBe(false);
    expect(r.problems[0]!.code).toBe('signature');
  });

  it('a log without checkpoints verifies its links but warns that truncation is undetectable', async () => {
    writeFileSync(join(d, 'checkpoints.jsonl'), '');
    const r = await verifyLog(d);
    expect(r.ok).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/no signed checkpoints/);
  });
});
