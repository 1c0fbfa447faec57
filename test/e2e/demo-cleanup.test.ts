// `phigate demo` leaves nothing running and nothing under /tmp however it is stopped (SIGINT to its
// process group as a terminal's Ctrl-C, SIGTERM, SIGHUP, its output pipe closed), and a second demo
// refuses at once, before starting anything, when the port or the data directory is taken.
import { describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type Proc } from '../support/harness.js';
import { freePort } from '../support/postgres.js';

const READY = /Press Ctrl-C to stop the demo/;
const START_MS = 150_000;

/**
 * A TMPDIR of the demo's own, so its embedded PostgreSQL's temporary directory can be found and
 * shown gone. As root PostgreSQL runs as `postgres`, which must be able to pass through it.
 */
function scratch(): { tmp: string; data: string; done: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'phigate-demo-cleanup-'));
  chmodSync(root, 0o755);
  const tmp = join(root, 'tmp');
  const data = join(root, 'data');
  mkdirSync(tmp);
  chmodSync(tmp, 0o755);
  return { tmp, data, done: () => rmSync(root, { recursive: true, force: true }) };
}

function demo(s: { tmp: string; data: string }, listen = '127.0.0.1:0', opts: { detached?: boolean } = {}): Proc {
  return run(['demo', '--no-tour', '--listen', listen, '--data-dir', s.data], { TMPDIR: s.tmp }, opts);
}

/** The embedded PostgreSQL's directories under `tmp` (phigate-demo-pg-*). */
const pgDirs = (tmp: string): string[] => (existsSync(tmp) ? readdirSync(tmp).filter((f) => f.startsWith('phigate-demo-pg-')) : []);

/** The postmaster under `tmp` and its children (the backends), from /proc. */
function postgresPids(tmp: string): number[] {
  const postmasters = pgDirs(tmp).flatMap((d) => {
    try {
      return [Number(readFileSync(join(tmp, d, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])];
    } catch {
      return [];
    }
  });
  const children = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return postmasters.includes(ppid) ? [Number(p)] : [];
    } catch {
      return [];
    }
  });
  return [...postmasters, ...children];
}

/** Processes whose command line names `path` (a postmaster started with -D under it). */
function processesNaming(path: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(path) ? [Number(p)] : [];
    } catch {
      return [];
    }
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The demo has exited 0 and left no PostgreSQL process and no temporary directory behind. */
async function expectCleanedUp(p: Proc, s: { tmp: string; data: string }, pids: number[]): Promise<void> {
  const { code } = await p.exited;
  expect(code, p.stderr()).toBe(0);
  // Backends leave right after their postmaster; give them a bounded moment, not a threshold.
  for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  expect(pids.filter(alive)).toEqual([]);
  expect(processesNaming(s.tmp)).toEqual([]);
  expect(pgDirs(s.tmp)).toEqual([]);
  // The data directory is the user's: kept, unlocked.
  expect(existsSync(join(s.data, 'phigate.yaml'))).toBe(true);
  expect(existsSync(join(s.data, 'demo.lock'))).toBe(false);
  expect(p.stderr()).toBe('');
}

describe.concurrent('phigate demo cleans up', () => {
  it('refuses a second demo on its port or data directory before starting anything; SIGTERM then cleans up', { timeout: 240_000 }, async () => {
    const s = scratch();
    const other = scratch();
    const port = await freePort();
    const first = demo(s, `127.0.0.1:${port}`);
    try {
      await first.waitFor(READY, START_MS);
      const policy = readFileSync(join(s.data, 'phigate.yaml'));
      const pids = postgresPids(s.tmp);
      expect(pids.length).toBeGreaterThan(1);

      const samePort = run(['demo', '--no-tour', '--listen', `127.0.0.1:${port}`, '--data-dir', s.data], { TMPDIR: other.tmp });
      expect((await samePort.exited).code).toBe(1);
      expect(samePort.stderr()).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} is in use \\(another phigate demo, pid ${first.proc.pid}\\)`));
      expect(samePort.stderr()).toMatch(/hint: stop it \(kill \d+, or Ctrl-C in its terminal\), or run this one elsewhere: .* demo --listen 127\.0\.0\.1:\d+ --data-dir \S+/);
      expect(samePort.stdout()).toBe('');

      const sameDir = run(['demo', '--no-tour', '--listen', '127.0.0.1:0', '--data-dir', s.data], { TMPDIR: other.tmp });
      expect((await sameDir.exited).code).toBe(1);
      expect(sameDir.stderr()).toMatch(new RegExp(`data directory .* is in use by another phigate demo \\(pid ${first.proc.pid}, listening on 127\\.0\\.0\\.1:${port}\\)`));

      // Neither started a database nor wrote a byte of the running demo's files.
      expect(pgDirs(other.tmp)).toEqual([]);
      expect(readFileSync(join(s.data, 'phigate.yaml')).equals(policy)).toBe(true);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

      first.proc.kill('SIGTERM');
      await expectCleanedUp(first, s, pids);
    } finally {
      await first.stop('SIGKILL');
      s.done();
      other.done();
    }
  });

  it('Ctrl-C on `phigate demo | tee demo.log`: SIGINT to the whole process group, the pipe reader gone', { timeout: 240_000 }, async () => {
    const s = scratch();
    const p = demo(s, '127.0.0.1:0', { detached: true });
    try {
      await p.waitFor(READY, START_MS);
      const pids = postgresPids(s.tmp);
      expect(pids.length).toBeGreaterThan(1);
      // tee dies of the same Ctrl-C: the demo's "stopping" line meets a closed pipe (EPIPE).
      p.proc.stdout!.destroy();
      process.kill(-p.proc.pid!, 'SIGINT');
      await expectCleanedUp(p, s, pids);
    } finally {
      await p.stop('SIGKILL');
      s.done();
    }
  });

  it('SIGHUP (its terminal closed)', { timeout: 240_000 }, async () => {
    const s = scratch();
    const p = demo(s);
    try {
      await p.waitFor(READY, START_MS);
      const pids = postgresPids(s.tmp);
      expect(pids.length).toBeGreaterThan(1);
      p.proc.kill('SIGHUP');
      await expectCleanedUp(p, s, pids);
      expect(p.stdout()).toMatch(/phigate demo: stopping/);
    } finally {
      await p.stop('SIGKILL');
      s.done();
    }
  });

  it('its output pipe closed while it starts (`phigate demo | head -1`): stops at its next line, no crash', { timeout: 240_000 }, async () => {
    const s = scratch();
    const p = demo(s);
    try {
      await p.waitFor(/starting an embedded PostgreSQL/, START_MS);
      p.proc.stdout!.destroy();
      await expectCleanedUp(p, s, []);
    } finally {
      await p.stop('SIGKILL');
      s.done();
    }
  });
});
