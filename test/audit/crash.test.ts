// Crash test at the store level: a child appends in a loop, is killed with SIGKILL mid-stream, and
// the log reopened afterwards is intact up to the last complete record, verifies, and records the
// repair of the torn line a crash can leave.
import { afterAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/log.js';
import { loadOrCreateSigningKey } from '../../src/audit/keys.js';
import { verifyLog } from '../../src/audit/verify.js';
import { tempDir } from './helpers.js';

const CHILD = join(import.meta.dirname, 'crash-child.mjs');
const BUILT = join(import.meta.dirname, '..', '..', 'dist', 'src', 'audit', 'log.js');
const t = tempDir();
afterAll(() => t.cleanup());

it('kill -9 while appending: reopen repairs the torn line, records it, keeps every synced record; verify passes', async () => {
  if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(process.execPath, [CHILD, t.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d));
  const lastSynced = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const all = [...out.matchAll(/synced (\d+)\n/g)];
      const n = Number(all.at(-1)?.[1] ?? -1);
      if (n >= 3000) {
        // Kill while it is still appending: no close(), no final checkpoint.
        child.kill('SIGKILL');
        resolve(n);
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited early (${code}): ${err}`)));
    setTimeout(() => reject(new Error(`child too slow: ${out.slice(-200)} ${err}`)), 30_000);
  });
  await new Promise((r) => child.once('exit', r));
  const auditDir = join(t.dir, 'audit');
  const logFile = join(auditDir, 'audit.jsonl');
  // SIGKILL cannot interrupt a write() to a regular file, so emulate the torn line a power cut leaves.
  const torn = '{"at":"2025-01-01T00:00:00.000Z","connection":"ehr","decision":"al';
  appendFileSync(logFile, torn);
  const sizeBefore = statSync(logFile).size;

  const log = AuditLog.open(auditDir, { signingKey: loadOrCreateSigningKey(t.dir) });
  expect(log.head.seq).toBeGreaterThanOrEqual(lastSynced);
  expect(log.repaired).toHaveLength(1);
  const repairedSeq = log.head.seq;
  await log.close();

  const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
  const repair = JSON.parse(lines[repairedSeq]!) as Record<string, unknown>;
  expect(repair).toMatchObject({ type: 'log.repaired', file: 'audit.jsonl', offset: sizeBefore - torn.length, bytes: torn.length });
  const report = await verifyLog(auditDir);
  expect(report.problems).toEqual([]);
  expect(report).toMatchObject({ ok: true, records: repairedSeq + 1, unanchored: 0 });
  expect(report.checkpoints).toBeGreaterThan(1);
});
