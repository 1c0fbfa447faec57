// Closing what a crash left open: the log's sessions without session.end (found from the search
// index), and their recordings (torn last line cut, ended as interrupted, sealed; idempotent).
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { RecordingWriter } from '../../src/recording/writer.js';
import { readRecording } from '../../src/recording/format.js';
import { RecordingRepairError, sealInterruptedRecording } from '../../src/recording/interrupted.js';
import { AuditLog } from '../../src/audit/log.js';
import { findOpenSessions } from '../../src/audit/open-sessions.js';
import { tempDir } from '../audit/helpers.js';

const t = tempDir('phigate-interrupted-');
afterAll(() => t.cleanup());
const META = { user: 'alice', connection: 'ehr' };
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A recording as a killed session leaves it: lines on disk, no end, never closed. */
function killedRecording(dir: string, id: string): string {
  let ms = 1_700_000_000_000;
  const w = RecordingWriter.open(dir, id, META, { now: () => ms, flushBytes: 1 });
  w.statement({ sql: 'SELECT id FROM patients WHERE id = $1', decision: 'allow' });
  ms += 40;
  w.rowDescription([{ name: 'id', type: 23 }]);
  w.row(['1']);
  w.complete({ tag: 'SELECT 1' });
  ms += 900;
  w.statement({ sql: 'INSERT INTO visits (id) VALUES ($1)', decision: 'allow' });
  return join(dir, `${id}.ndjson`);
}

describe('sealInterruptedRecording', () => {
  it('cuts a torn last line, appends an interrupted end at the last event\'s time, and seals the bytes', () => {
    const dir = join(t.dir, 'torn');
    const path = killedRecording(dir, 'sess-torn');
    const good = statSync(path).size;
    const torn = '{"t":950,"type":"row","n":2,"values":["4';
    appendFileSync(path, torn);

    const seal = sealInterruptedRecording(dir, 'sess-torn', 'interrupted')!;
    const bytes = readFileSync(path);
    expect(seal).toEqual({ sha256: sha(bytes), file: 'sess-torn.ndjson', bytes: bytes.length, statements: 2, durationMs: 940, cut: { bytes: torn.length, sha256: sha(torn) } });
    expect(bytes.subarray(0, good).toString()).not.toContain(torn);
    const rec = readRecording(path);
    expect(rec.complete).toBe(true);
    expect(rec.torn).toBe(false);
    expect(rec.events.at(-1)).toEqual({ t: 940, type: 'end', statements: 2, reason: 'interrupted', cut_bytes: torn.length });

    // A crash during the repair itself: the next start seals the same bytes, no second end.
    const again = sealInterruptedRecording(dir, 'sess-torn', 'interrupted')!;
    expect(again.sha256).toBe(seal.sha256);
    expect(again.cut).toBeUndefined();
    expect(readRecording(path).events.filter((e) => e.type === 'end')).toHaveLength(1);
  });

  it('a recording that ends on a whole line gets its end without a cut; no recording, no seal; no line at all is refused', () => {
    const dir = join(t.dir, 'whole');
    const path = killedRecording(dir, 'sess-whole');
    const seal = sealInterruptedRecording(dir, 'sess-whole', 'interrupted')!;
    expect(seal.cut).toBeUndefined();
    expect(readRecording(path).events.at(-1)).toEqual({ t: 940, type: 'end', statements: 2, reason: 'interrupted' });
    expect(sealInterruptedRecording(dir, 'sess-none', 'interrupted')).toBeUndefined();
    writeFileSync(join(dir, 'sess-empty.ndjson'), '{"type":"header","form');
    expect(() => sealInterruptedRecording(dir, 'sess-empty', 'interrupted')).toThrow(RecordingRepairError);
  });
});

describe('findOpenSessions', () => {
  it('finds session.start without session.end after the last server.stop, reading the log backwards across chunks', async () => {
    const dir = join(t.dir, 'log');
    const log = AuditLog.open(dir, { syncIntervalMs: 0 });
    const start = (session: string, user: string) => log.append({
      type: 'session.start', session, user, subject: user, issuer: 'https://idp', kind: 'human', connection: 'ehr',
    });
    const end = (session: string) => log.append({ type: 'session.end', session, user: 'u', connection: 'ehr', duration_ms: 5, statements: 1, bytes_in: 1, bytes_out: 1 });
    const statements = (session: string, n: number) => log.appendMany(Array.from({ length: n }, (_, i) => ({
      type: 'statement' as const, session, user: 'u', connection: 'ehr', sql: `SELECT ${'x, '.repeat(i % 40)}1 FROM patients`, kinds: ['select'], tables: ['patients'], decision: 'allow' as const, policy: 'sha256:x',
    })));
    // Before a clean stop nothing can be open (a stop ends its sessions first): not even a start without an end.
    start('s-before-stop', 'dave');
    log.append({ type: 'server.stop', reason: 'SIGTERM', sessions: 0 });
    start('s-ended', 'alice');
    start('s-open-1', 'bob');
    statements('s-open-1', 2000); // about 400 kB: lines cross the reader's 256 kB chunks
    end('s-ended');
    // A nested "type" naming server.stop is an audit.search filter, not a stop.
    log.append({ type: 'audit.search', user: 'carol', filters: { type: 'server.stop' }, results: 0 });
    start('s-open-2', 'carol');
    statements('s-open-2', 3);
    await log.close();
    const open = findOpenSessions(join(dir, 'audit.jsonl'));
    expect(open.map((s) => [s.session, s.user, s.connection])).toEqual([['s-open-1', 'bob', 'ehr'], ['s-open-2', 'carol', 'ehr']]);
    expect(open[0]!.startSeq).toBe(3);
    expect(Date.parse(open[0]!.startedAt)).toBeGreaterThan(0);
  });
});
