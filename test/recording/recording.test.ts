// Session recordings: what the writer puts in the file (timed events, row cap with true counts), the
// seal, a crash's readable prefix, tampering caught by audit verify, and psql's exact table layout.
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { RecordingWriter } from '../../src/recording/writer.js';
import { parseRecording, readRecording, type RecordingEvent } from '../../src/recording/format.js';
import { formatTable, renderBlocks, renderText } from '../../src/recording/psql.js';
import { displayWidth } from '../../src/ui/width.js';
import { resolveRecording, RecordingLookupError } from '../../src/recording/files.js';
import { AuditLog } from '../../src/audit/log.js';
import { verifyLog } from '../../src/audit/verify.js';
import { tempDir } from '../audit/helpers.js';

const t = tempDir('phigate-rec-');
afterAll(() => t.cleanup());
const META = { user: 'alice', connection: 'ehr', kind: 'agent', agent: 'claude', client_database: 'ehr', application_name: 'psql' };

/** A fake clock the writer reads. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let ms = 1_700_000_000_000;
  return { now: () => ms, advance: (d) => void (ms += d) };
}

describe('RecordingWriter', () => {
  it('writes a header and timed events, and seals the file with its SHA-256', () => {
    const c = clock();
    const w = RecordingWriter.open(t.dir, 'sess-1', META, { now: c.now });
    expect(w.statement({ sql: 'SELECT id, ssn FROM patients WHERE id = $1', decision: 'allow', kinds: ['select'], tables: ['patients'] })).toBe(1);
    c.advance(12);
    w.rowDescription([{ name: 'id', type: 23 }, { name: 'ssn', type: 25 }]);
    w.row(['1', '***-**-6789']);
    w.row(['2', null]);
    c.advance(3);
    w.complete({ tag: 'SELECT 2' });
    c.advance(500);
    w.statement({ sql: 'DELETE FROM visits WHERE id = $1', decision: 'approve', rule: 'phi-writes' });
    w.wait({ approval: 'apr-1', state: 'waiting', approvers: ['privacy-officers'], rule: 'phi-writes' });
    c.advance(4000);
    w.wait({ approval: 'apr-1', state: 'denied', approver: 'bob', reason: 'not today' });
    w.error({ severity: 'ERROR', code: '42501', message: 'phigate: denied by bob: not today' });
    w.notice({ severity: 'NOTICE', message: 'just so you know' });
    const seal = w.close({ reason: 'client closed' });
    expect(w.close()).toBe(seal);
    const bytes = readFileSync(seal.path);
    expect(seal).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex'), path: join(t.dir, 'sess-1.ndjson'), file: 'sess-1.ndjson', bytes: bytes.length });
    expect(statSync(seal.path).mode & 0o777).toBe(0o600);
    const rec = readRecording(seal.path);
    expect(rec.complete).toBe(true);
    expect(rec.header).toMatchObject({ type: 'header', format: 'phigate-recording', version: 1, session: 'sess-1', user: 'alice', row_cap: 1000, started_at: new Date(1_700_000_000_000).toISOString() });
    expect(rec.events.map((e) => [e.t, e.type])).toEqual([
      [0, 'statement'], [12, 'columns'], [12, 'row'], [12, 'row'], [15, 'complete'], [515, 'statement'], [515, 'wait'], [4515, 'wait'], [4515, 'error'], [4515, 'notice'], [4515, 'end'],
    ]);
    expect(rec.events[4]).toEqual({ t: 15, type: 'complete', n: 1, tag: 'SELECT 2', rows: 2, recorded: 2 });
    expect(rec.events.at(-1)).toEqual({ t: 4515, type: 'end', statements: 2, reason: 'client closed' });
    expect(() => RecordingWriter.open(t.dir, 'sess-1', META)).toThrow(/EEXIST/);
    expect(() => RecordingWriter.open(t.dir, '../escape', META)).toThrow(/not a session id/);
  });

  it('counts rows past the cap without their values (countRow), and keepsNextRow says when', () => {
    const w = RecordingWriter.open(t.dir, 'sess-count', META, { rowCap: 2 });
    w.statement({ sql: 'SELECT 1', decision: 'allow' });
    w.rowDescription([{ name: 'n' }]);
    for (let i = 0; i < 5; i++) {
      if (w.keepsNextRow()) w.row([String(i)]);
      else w.countRow();
    }
    w.complete({ tag: 'SELECT 5' });
    const rec = readRecording(w.close().path);
    expect(rec.events.filter((e) => e.type === 'row')).toHaveLength(2);
    expect(rec.events.find((e) => e.type === 'complete')).toMatchObject({ rows: 5, recorded: 2 });
  });

  it('keeps the first rows up to the cap per statement and records the true count', () => {
    const w = RecordingWriter.open(t.dir, 'sess-cap', META, { rowCap: 3 });
    w.statement({ sql: 'SELECT 1; SELECT 2', decision: 'allow' });
    w.rowDescription([{ name: 'n', type: 23 }]);
    for (let i = 0; i < 5; i++) w.row([String(i)]);
    w.complete({ tag: 'SELECT 5' });
    w.rowDescription([{ name: 'm', type: 23 }]);
    w.row(['x']);
    w.complete({ tag: 'SELECT 1' });
    w.statement({ sql: 'SELECT 3', decision: 'allow' });
    w.rowDescription([{ name: 'k', type: 23 }]);
    for (let i = 0; i < 2; i++) w.row([String(i)]);
    w.complete({ tag: 'SELECT 2' });
    const rec = readRecording(w.close().path);
    const completes = rec.events.filter((e): e is Extract<RecordingEvent, { type: 'complete' }> => e.type === 'complete');
    expect(completes.map((c) => [c.rows, c.recorded])).toEqual([[5, 3], [1, 0], [2, 2]]);
    expect(rec.events.filter((e) => e.type === 'row')).toHaveLength(5);
    expect(renderText(rec)).toContain('-- phigate: 3 rows of 5 rows recorded (row cap 3)');
  });

  it('shows at most maxRows rows of a result, then "... N more rows" above psql\'s footer', () => {
    const w = RecordingWriter.open(t.dir, 'sess-maxrows', META);
    w.statement({ sql: 'SELECT k FROM t', decision: 'allow' });
    w.rowDescription([{ name: 'k', type: 23 }]);
    for (let i = 1; i <= 1000; i++) w.row([String(i)]);
    w.complete({ tag: 'SELECT 1000' });
    const rec = readRecording(w.close().path);
    const text = renderText(rec, { maxRows: 2 });
    expect(text).toContain([' k ', '---', ' 1', ' 2', '... 998 more rows (--rows all shows them)', '(1000 rows)', ''].join('\n'));
    expect(text).not.toContain(' 3\n');
    expect(renderText(rec)).toContain(' 1000\n(1000 rows)');
    expect(renderText(rec, { maxRows: 1000 })).not.toContain('more row');
  });

  it('counts the rows of a continued portal (the next fetch of a cursor) against the same cap', () => {
    const w = RecordingWriter.open(t.dir, 'sess-fetch', META, { rowCap: 3 });
    w.statement({ sql: 'SELECT g FROM generate_series(<n>, <n>) g', decision: 'allow' });
    w.rowDescription([{ name: 'g', type: 23 }]);
    for (let i = 0; i < 2; i++) w.row([String(i)]);
    // the client asks the same portal for more rows
    w.statement({ sql: 'SELECT g FROM generate_series(<n>, <n>) g', decision: 'allow' }, true);
    for (let i = 2; i < 4; i++) {
      if (w.keepsNextRow()) w.row([String(i)]);
      else w.countRow();
    }
    w.complete({ tag: 'SELECT 2' });
    // a new statement starts its own cap
    w.statement({ sql: 'SELECT 1', decision: 'allow' });
    expect(w.keepsNextRow()).toBe(true);
    const rec = readRecording(w.close().path);
    expect(rec.events.filter((e) => e.type === 'row').map((e) => (e as { values: string[] }).values[0])).toEqual(['0', '1', '2']);
  });

  it('flushes whole lines as it goes: a crash leaves a readable prefix', async () => {
    const w = RecordingWriter.open(t.dir, 'sess-crash', META, { flushBytes: 200, flushIntervalMs: 10 });
    w.statement({ sql: 'SELECT 1', decision: 'allow' });
    w.rowDescription([{ name: 'n', type: 23 }]);
    for (let i = 0; i < 50; i++) w.row([String(i)]);
    await new Promise((r) => setTimeout(r, 30));
    // No close(): the process "died". A torn line from the crash is tolerated too.
    const path = join(t.dir, 'sess-crash.ndjson');
    appendFileSync(path, '{"t":1,"type":"ro');
    const rec = parseRecording(readFileSync(path, 'utf8'));
    expect(rec.complete).toBe(false);
    expect(rec.torn).toBe(true);
    expect(rec.events.filter((e) => e.type === 'row')).toHaveLength(50);
  });

  it('a recording changed after its session ended fails audit verify, naming the session', async () => {
    const d = tempDir();
    try {
      const recordings = join(d.dir, 'recordings');
      const w = RecordingWriter.open(recordings, 'sess-t', META);
      w.statement({ sql: 'SELECT 1', decision: 'allow' });
      w.rowDescription([{ name: 'ssn' }]);
      w.row(['***-**-6789']);
      w.complete({ tag: 'SELECT 1' });
      const seal = w.close();
      const log = AuditLog.open(join(d.dir, 'audit'));
      log.append({ type: 'session.end', session: 'sess-t', user: 'alice', connection: 'ehr', duration_ms: 5, statements: 1, bytes_in: 1, bytes_out: 1, recording: { sha256: seal.sha256, file: seal.file } });
      await log.close();
      await new Promise((r) => setTimeout(r, 50));
      expect(await verifyLog(join(d.dir, 'audit'), { recordingsDir: recordings })).toMatchObject({ ok: true, recordings: { checked: 1, failed: 0 } });
      // Unmask a value after the fact.
      writeFileSync(seal.path, readFileSync(seal.path, 'utf8').replace('***-**-6789', '123-45-6789'));
      const r = await verifyLog(join(d.dir, 'audit'), { recordingsDir: recordings });
      expect(r.ok).toBe(false);
      expect(r.recordings).toEqual({ checked: 1, failed: 1 });
      expect(r.problems[0]!.message).toBe(`recording of session sess-t (sealed in record 0): SHA-256 of ${seal.path} does not match the seal (altered after the session ended)`);
    } finally {
      d.cleanup();
    }
  });

  it('finds a recording by id or unique prefix', () => {
    expect(resolveRecording(t.dir, 'sess-1')).toBe('sess-1');
    expect(resolveRecording(t.dir, 'sess-cr')).toBe('sess-crash');
    expect(() => resolveRecording(t.dir, 'sess')).toThrow(RecordingLookupError);
    expect(() => resolveRecording(t.dir, 'sess')).toThrow(/sessions start with "sess"/);
    expect(() => resolveRecording(t.dir, 'nope-nope')).toThrow(/no recording of session/);
  });
});

describe('psql rendering', () => {
  // Each expected block is psql 15's output for the same query (captured with `psql -X -c`).
  it('lays out tables exactly as psql does', () => {
    expect(formatTable(
      [{ name: 'a', type: 23 }, { name: 'bbbbbbbbb', type: 25 }, { name: 'c', type: 25 }, { name: 'num', type: 1700 }, { name: 'flag', type: 16 }],
      [['1', 'hello', null, '12.5', 't']],
    )).toEqual([' a | bbbbbbbbb | c | num  | flag ', '---+-----------+---+------+------', ' 1 | hello     |   | 12.5 | t', '(1 row)', '']);
    expect(formatTable([{ name: 'long_header_name', type: 25 }, { name: 'n', type: 23 }], [['x', '123456']]))
      .toEqual([' long_header_name |   n    ', '------------------+--------', ' x                | 123456', '(1 row)', '']);
    expect(formatTable([{ name: 'ml', type: 25 }, { name: 'n', type: 23 }, { name: 'z', type: 25 }], [['line1\nline2', '2', 'a']]))
      .toEqual(['  ml   | n | z ', '-------+---+---', ' line1+| 2 | a', ' line2 |   | ', '(1 row)', '']);
    expect(formatTable([{ name: '?column?', type: 23 }], [])).toEqual([' ?column? ', '----------', '(0 rows)', '']);
    expect(formatTable([{ name: 'u', type: 25 }, { name: 'j', type: 25 }], [['ünï', '日本語']]))
      .toEqual(['  u  |   j    ', '-----+--------', ' ünï | 日本語', '(1 row)', '']);
    expect(formatTable([], [[]])).toEqual(['--', '(1 row)', '']);
    expect(displayWidth('日本語')).toBe(6);
    // Emoji outside the old hand-written ranges, a ZWJ sequence (one glyph), Thai and Hangul jamo
    // combining, as a terminal draws them.
    expect(['🩺', '👩‍⚕️', 'กั', '\u1100\u1161', 'e\u0301', 'ａ'].map(displayWidth)).toEqual([2, 2, 1, 2, 1, 2]);
    expect(formatTable([{ name: 'p', type: 25 }, { name: 'n', type: 23 }], [['🩺 ok', '1'], ['👩‍⚕️', '22']]))
      .toEqual(['   p   | n  ', '-------+----', ' 🩺 ok |  1', ' 👩‍⚕️    | 22', '(2 rows)', '']);
  });

  it('renders a session as psql showed it: prompt, tables, tags, errors, notices, and phigate\'s own notes', () => {
    const c = clock();
    const w = RecordingWriter.open(t.dir, 'sess-render', META, { now: c.now });
    w.statement({ sql: 'SELECT a, b\nFROM t', decision: 'allow' });
    w.rowDescription([{ name: 'a', type: 23 }, { name: 'b', type: 25 }]);
    w.row(['1', 'x']);
    w.row(['2', 'y']);
    w.complete({ tag: 'SELECT 2' });
    w.statement({ sql: 'UPDATE t SET a = $1;', decision: 'approve' });
    w.wait({ approval: 'apr-9', state: 'waiting', approvers: ['privacy-officers'], rule: 'phi-writes' });
    c.advance(2000);
    w.wait({ approval: 'apr-9', state: 'approved', approver: 'bob', reason: 'ticket 7' });
    w.complete({ tag: 'UPDATE 2' });
    w.statement({ sql: 'DROP TABLE t', decision: 'block', rule: 'no-ddl' });
    w.error({ severity: 'ERROR', code: '42501', message: 'phigate: blocked by rule "no-ddl"', hint: 'ask an admin' });
    w.statement({ sql: 'DO $$ BEGIN RAISE NOTICE $1; END $$', decision: 'allow' });
    w.notice({ severity: 'NOTICE', message: 'hello' });
    w.complete({ tag: 'DO' });
    const rec = readRecording(w.close().path);
    expect(renderText(rec)).toBe([
      'ehr=> SELECT a, b', 'ehr-> FROM t;',
      ' a | b ', '---+---', ' 1 | x', ' 2 | y', '(2 rows)', '',
      'ehr=> UPDATE t SET a = $1;',
      '-- phigate: waiting for approval apr-9 from privacy-officers (rule phi-writes)',
      '-- phigate: apr-9 approved by bob: ticket 7',
      'UPDATE 2',
      'ehr=> DROP TABLE t;',
      'ERROR:  phigate: blocked by rule "no-ddl"', 'HINT:  ask an admin',
      'ehr=> DO $$ BEGIN RAISE NOTICE $1; END $$;',
      'NOTICE:  hello', 'DO',
      '-- session ended after 4 statements',
      '',
    ].join('\n'));
    const blocks = renderBlocks(rec);
    expect(blocks.find((b) => b.lines[0] === 'UPDATE 2')!.t).toBe(2000);
  });
});
