// `phigate replay` in a real pseudo-terminal (tmux): a session recorded from real PostgreSQL results
// plays back showing the same table psql shows for the same query, with pacing, a progress line,
// step mode, pause, speed keys and quit.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { AuditLog } from '../../src/audit/log.js';
import { RecordingWriter } from '../../src/recording/writer.js';
import { BIN } from '../support/proc.js';
import { Tmux } from '../support/tmux.js';
import { expectTools } from '../support/expect-tools.js';
import { spawnFailure } from '../support/prereqs.js';
import { tempDir } from '../audit/helpers.js';

const term = new Tmux('replay');
const tmux = (...args: string[]): string => term.run(...args);

const QUERY = `SELECT * FROM (VALUES (1, 'Ada Lovelace', '***-**-6789', 12.50, true), (2, 'Grace Hopper', NULL, 7.25, false),
  (10, 'Katherine Johnson', '***-**-0042', 100.00, NULL)) AS p(id, full_name, ssn, balance, active) ORDER BY id`;
const SESSION = 'a11ce000-0000-4000-8000-0000000000aa';
const t = tempDir('phigate-replay-');
let psqlTable: string[];

beforeAll(async () => {
  const db = inject('pg');
  // What psql shows for the query (its own process, its own formatting).
  let out: string;
  try {
    out = execFileSync('psql', ['-X', '-h', db.host, '-p', String(db.port), '-U', db.superuser.user, '-d', db.database, '-c', QUERY], {
      encoding: 'utf8', env: { ...process.env, PGPASSWORD: db.superuser.password, PGSSLMODE: 'disable' },
    });
  } catch (err) {
    throw spawnFailure('psql', err as Error);
  }
  psqlTable = out.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  // The same query's RowDescription and rows, as the gateway would record them (text format).
  const client = new pg.Client({ host: db.host, port: db.port, user: db.superuser.user, password: db.superuser.password, database: db.database, ssl: false });
  await client.connect();
  const res = await client.query({ text: QUERY, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
  await client.end();

  let now = Date.now() - 10_000;
  const w = RecordingWriter.open(join(t.dir, 'recordings'), SESSION, { user: 'alice', connection: 'ehr', client_database: 'ehr', agent: 'claude', kind: 'agent' }, { now: () => now });
  w.statement({ sql: QUERY, decision: 'allow' });
  now += 40;
  w.rowDescription(res.fields.map((f) => ({ name: f.name, type: f.dataTypeID })));
  for (const r of res.rows as (string | null)[][]) w.row(r);
  w.complete({ tag: `SELECT ${res.rowCount}` });
  now += 1200;
  w.statement({ sql: 'DELETE FROM visits WHERE id = $1', decision: 'approve', rule: 'phi-writes' });
  w.wait({ approval: 'apr-7k2m9q', state: 'waiting', approvers: ['privacy-officers'], rule: 'phi-writes' });
  now += 1500;
  w.wait({ approval: 'apr-7k2m9q', state: 'approved', approver: 'bob', reason: 'ticket 42' });
  w.complete({ tag: 'DELETE 1' });
  now += 800;
  w.statement({ sql: 'DROP TABLE patients', decision: 'block', rule: 'no-ddl' });
  w.error({ severity: 'ERROR', code: '42501', message: 'phigate: blocked by rule "no-ddl": DDL is not allowed through phigate' });
  now += 300;
  const seal = w.close({ reason: 'client closed' });
  const log = AuditLog.open(join(t.dir, 'audit'));
  log.append({ type: 'session.end', session: SESSION, user: 'alice', connection: 'ehr', duration_ms: 3840, statements: 3, bytes_in: 1, bytes_out: 1, recording: { sha256: seal.sha256, file: seal.file } });
  await log.close();
});

afterAll(() => {
  try {
    tmux('kill-server');
  } catch {
    // no server started
  }
  t.cleanup();
});

function start(name: string, args: string[], env: Record<string, string> = {}): void {
  // CI is unset in the pane (env -u): under CI, ink renders only its last frame and colours are
  // switched off, but this is a real terminal.
  const vars = { TERM: 'xterm-256color', PHIGATE_HOME: t.dir, ...env };
  const cmd = `env -u CI -u CONTINUOUS_INTEGRATION ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} replay ${SESSION.slice(0, 8)} --data-dir ${JSON.stringify(t.dir)} ${args.join(' ')}; echo "EXIT=$?"; sleep 60`;
  term.start(name, cmd, { x: 160, y: 50 }, vars);
}

const waitForScreen = (name: string, re: RegExp, timeoutMs = 15_000): Promise<string> => term.waitFor(name, re, { timeoutMs });

/** The screen's lines, trailing spaces dropped (as psql's output above). */
const linesOf = (s: string): string[] => s.split('\n').map((l) => l.trimEnd());

function containsRun(haystack: string[], needle: string[]): boolean {
  for (let i = 0; i + needle.length <= haystack.length; i++) if (needle.every((l, k) => haystack[i + k] === l)) return true;
  return false;
}

// A missing tool is a failure naming its package, never a silent skip.
const hasTmux = expectTools('tmux');

describe.skipIf(!hasTmux)('phigate replay in a terminal', () => {
  it('plays the session with its pacing and shows the table exactly as psql does', async () => {
    expect(psqlTable[0]).toBe(' id |     full_name     |     ssn     | balance | active');
    const t0 = Date.now();
    start('play', ['--speed', '2']);
    let s = await waitForScreen('play', /▶ playing/);
    expect(s).toContain(`Session ${SESSION}: alice (agent "claude") on ehr`);
    expect(s).toContain('recording matches its seal');
    s = await waitForScreen('play', /EXIT=0/);
    // 3.84 s of session at twice the speed.
    expect(Date.now() - t0).toBeGreaterThan(1500);
    const lines = linesOf(s);
    expect(containsRun(lines, psqlTable), `psql:\n${psqlTable.join('\n')}\nscreen:\n${s}`).toBe(true);
    expect(s).toContain('ehr=> SELECT * FROM (VALUES');
    expect(s).toContain('-- phigate: waiting for approval apr-7k2m9q from privacy-officers (rule phi-writes)');
    expect(s).toContain('-- phigate: apr-7k2m9q approved by bob: ticket 42');
    expect(s).toContain('DELETE 1');
    expect(s).toContain('ERROR:  phigate: blocked by rule "no-ddl": DDL is not allowed through phigate');
    expect(s).toMatch(/■ end 00:03 \/ 00:03 \[█{24}\] statement 3\/3 +×2/);
  });

  it('--step shows one statement per key; space pauses, + speeds up, q quits', async () => {
    start('step', ['--step']);
    let s = await waitForScreen('step', /⏭ step .*statement 0\/3/);
    expect(s).not.toContain('Ada Lovelace');
    tmux('send-keys', '-t', 'step', 'Enter');
    s = await waitForScreen('step', /statement 1\/3/);
    expect(containsRun(linesOf(s), psqlTable)).toBe(true);
    expect(s).not.toContain('DELETE FROM visits');
    tmux('send-keys', '-t', 'step', ' ');
    s = await waitForScreen('step', /statement 2\/3/);
    expect(s).toContain('DELETE 1');
    tmux('send-keys', '-t', 'step', 'q');
    s = await waitForScreen('step', /EXIT=0/);
    expect(s).not.toContain('DROP TABLE patients');

    start('pause', ['--speed', '0.25']);
    await waitForScreen('pause', /▶ playing/);
    tmux('send-keys', '-t', 'pause', ' ');
    await waitForScreen('pause', /⏸ paused/);
    tmux('send-keys', '-t', 'pause', '+');
    await waitForScreen('pause', /×1\/2/);
    tmux('send-keys', '-t', 'pause', 'n');
    // The table is drawn in one frame, but a capture can land mid-draw: wait for its last line.
    s = await waitForScreen('pause', new RegExp(psqlTable.at(-1)!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    expect(containsRun(linesOf(s), psqlTable)).toBe(true);
    tmux('send-keys', '-t', 'pause', 'q');
    await waitForScreen('pause', /EXIT=0/);
  });
});
