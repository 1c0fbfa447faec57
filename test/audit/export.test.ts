// audit export: a time range as a bundle verifiable offline on its own (chain, checkpoint signatures
// covering the range, completeness at both ends, policy texts), and tampered bundles caught.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSyntheticLog, syntheticStatement } from '../../scripts/bench-audit.js';
import { exportBundleToFile, verifyBundle, type BundleHeader } from '../../src/audit/export.js';
import { searchAudit } from '../../src/audit/search.js';
import { AuditLog } from '../../src/audit/log.js';
import { policyVersion } from '../../src/policy/version.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { tempDir } from './helpers.js';

const N = 5000;
const HOUR = 3_600_000;
const POLICY_A = 'version: 1\ndefault: allow\n';
const POLICY_B = 'version: 1\ndefault: block\n';
const A = policyVersion(POLICY_A);
const B = policyVersion(POLICY_B);

const t = tempDir();
const auditDir = join(t.dir, 'audit');
const policiesDir = join(t.dir, 'policies');
let key: KeyObject;
let range: { first: number; last: number };
afterAll(() => t.cleanup());

beforeAll(() => {
  key = generateKeyPairSync('ed25519').privateKey;
  mkdirSync(policiesDir, { recursive: true });
  writeFileSync(join(policiesDir, `${A.slice(7)}.yaml`), POLICY_A);
  writeFileSync(join(policiesDir, `${B.slice(7)}.yaml`), POLICY_B);
  // 5,000 records over 50 hours; policy A from the start, B from record 3000.
  const extra = (i: number): AuditEvent | undefined => {
    if (i === 0) return { type: 'policy.activated', policy: A, source: 'startup' };
    if (i === 3000) return { type: 'policy.activated', policy: B, source: 'api', by: 'admin' };
    return { ...syntheticStatement(i), policy: i < 3000 ? A : B } as AuditEvent;
  };
  range = generateSyntheticLog(auditDir, N, { spanMs: 50 * HOUR, extra, signingKey: key, checkpointEvery: 500 });
});

const bundleFile = (name: string): string => join(t.dir, name);

describe('audit export', () => {
  it('exports a time range that verifies offline, anchored at both ends, with the policies in force', async () => {
    const since = range.first + 10 * HOUR;
    const until = range.first + 12 * HOUR;
    const file = bundleFile('range.ndjson');
    const summary = await exportBundleToFile(auditDir, file, { since, until, policiesDir });
    const inRange = searchAudit(auditDir, { since, until, limit: 10_000 }).records.map((r) => r.seq).sort((a, b) => a - b);
    expect(summary.header.range).toEqual({ first_seq: inRange[0], last_seq: inRange.at(-1) });
    // One record before the range; after it up to the next checkpoint (every 500 records).
    expect(summary.header.records!.first_seq).toBe(inRange[0]! - 1);
    expect((summary.header.records!.last_seq + 1) % 500).toBe(0);
    expect(summary.header.records!.last_seq).toBeGreaterThanOrEqual(inRange.at(-1)!);
    expect(summary.unanchored).toBe(false);

    const report = await verifyBundle(file, { publicKey: key });
    expect(report.problems).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(report).toMatchObject({ ok: true, records: summary.header.records!.count, policies: 1 });
    expect(report.checkpoints).toBeGreaterThanOrEqual(1);

    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ bundle: 'header', format: 'phigate-audit-bundle', version: 1, canonical: 'RFC 8785 (JCS)' });
    expect(lines.at(-1)).toMatchObject({ bundle: 'end', records: summary.header.records!.count });
    expect(lines.filter((l) => l['bundle'] === 'policy').map((l) => l['version'])).toEqual([A]);
  });

  it('a range spanning a policy change carries both versions; the whole log exports too', async () => {
    const file = bundleFile('span.ndjson');
    await exportBundleToFile(auditDir, file, { since: range.first + 29 * HOUR, until: range.first + 31 * HOUR, policiesDir });
    const r = await verifyBundle(file, { publicKey: key });
    expect(r.ok).toBe(true);
    expect(r.policies).toBe(2);
    const all = bundleFile('all.ndjson');
    const s = await exportBundleToFile(auditDir, all, { policiesDir });
    expect(s.header.records).toEqual({ first_seq: 0, last_seq: N - 1, count: N });
    expect((await verifyBundle(all)).ok).toBe(true);
    // Nothing in range: a valid, empty bundle.
    const none = bundleFile('none.ndjson');
    const e = await exportBundleToFile(auditDir, none, { since: range.last + HOUR, policiesDir });
    expect(e.header.range).toBeNull();
    expect((await verifyBundle(none)).ok).toBe(true);
  });

  it('catches a tampered bundle: a changed record, a dropped record, a cut-off file, an altered policy, another key', async () => {
    const file = bundleFile('tamper.ndjson');
    await exportBundleToFile(auditDir, file, { since: range.first + 20 * HOUR, until: range.first + 21 * HOUR, policiesDir });
    const original = readFileSync(file, 'utf8').split('\n');
    const firstRecordLine = original.findIndex((l) => l.startsWith('{') && !l.includes('"bundle"'));
    const check = async (lines: string[], re: RegExp): Promise<void> => {
      const f = bundleFile('tampered.ndjson');
      writeFileSync(f, lines.join('\n'));
      const r = await verifyBundle(f, { publicKey: key });
      expect(r.ok).toBe(false);
      expect(r.problems.map((p) => p.message).join('\n')).toMatch(re);
    };
    const k = firstRecordLine + 10;
    const seqK = (JSON.parse(original[k]!) as { seq: number }).seq;
    await check(original.map((l, i) => (i === k ? l.replace('"rows":', '"rows":1') : l)), new RegExp(`record ${seqK + 1} \\(line ${k + 2}\\): prev hash does not match record ${seqK}`));
    await check(original.filter((_, i) => i !== k), new RegExp(`record ${seqK + 1} \\(line ${k + 1}\\): expected record ${seqK} here; record ${seqK} is missing`));
    await check(original.slice(0, k + 5), /no end line \(cut off\)/);
    await check(original.map((l) => (l.includes('"bundle":"policy"') ? l.replace('default: allow', 'default: block ') : l)), /policy sha256:[0-9a-f]+: its text does not hash to its version/);
    const other = generateKeyPairSync('ed25519').privateKey;
    const r = await verifyBundle(file, { publicKey: other });
    expect(r.ok).toBe(false);
    expect(r.keyMismatch).toBe(true);
    expect(r.problems[0]!.code).toBe('signature');
  });

  it('a range the server has not signed yet verifies its links and says the signature is missing', async () => {
    const d = tempDir();
    try {
      const log = AuditLog.open(d.dir);
      for (let i = 0; i < 10; i++) log.append(syntheticStatement(i));
      await log.close();
      const file = join(d.dir, 'b.ndjson');
      const s = await exportBundleToFile(d.dir, file);
      expect(s.unanchored).toBe(true);
      const r = await verifyBundle(file);
      // No public key anywhere: nothing to check signatures with.
      expect(r.problems.map((p) => p.code)).toEqual(['key']);
      const header = JSON.parse(readFileSync(file, 'utf8').split('\n')[0]!) as BundleHeader;
      expect(header.records?.count).toBe(10);
    } finally {
      d.cleanup();
    }
  });
});
