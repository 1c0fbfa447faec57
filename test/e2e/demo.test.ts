// `phigate demo` on embedded defaults: starts, runs its tour through the real gateway, stops cleanly.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../support/harness.js';

describe('phigate demo', () => {
  it('serves a synthetic EHR through the gateway, tours it, and shuts down on Ctrl-C', { timeout: 200_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phigate-demo-'));
    const demo = run(['demo', '--listen', '127.0.0.1:0', '--data-dir', dir]);
    try {
      await demo.waitFor(/Press Ctrl-C to stop the demo/, 150_000);
      const out = demo.stdout();
      expect(out).toMatch(/gateway +http:\/\/127\.0\.0\.1:\d+ +\(dev mode/);
      expect(out).toMatch(/10,000 synthetic patients/);
      // the tour ran to its end: the agent's read, the blocked DROP, bob's approval, the evidence
      expect(out).not.toMatch(/The tour stopped/);
      expect(out).toMatch(/^ +\d+ \| tok_[0-9a-f]+ \| \*\*\* /m);
      expect(out).toMatch(/ERROR: +phigate: blocked by rule "no-ddl"/);
      expect(out).toMatch(/approval apr-[a-z0-9]+ granted by dev-bob/);
      expect(out).toMatch(/^ +DELETE 1$/m);
      expect(out).toMatch(/audit log intact/);
      expect(out).toMatch(/Tour complete\./);
      // The held DELETE is one statement of its session, approved or not: the replay shows it once and
      // ends "after 1 statement", as `phigate sessions` (the session.end record) counts it.
      const replayed = out.slice(out.indexOf('$ phigate replay'), out.indexOf('$ phigate audit verify'));
      expect(replayed.match(/=> DELETE FROM visits/g), replayed).toHaveLength(1);
      expect(replayed).toMatch(/-- session ended after 1 statement\b/);
      const sessionId = /\$ phigate replay ([0-9a-z-]+)/.exec(out)![1]!;
      const sessions = run(['sessions', '--data-dir', dir, '--user', 'dev-agent', '--json']);
      expect((await sessions.exited).code, sessions.stderr()).toBe(0);
      const listed = (JSON.parse(sessions.stdout()) as { sessions: { session: string; statements: number }[] }).sessions;
      expect(listed.find((x) => x.session === sessionId)?.statements).toBe(1);
      // no colour codes when stdout is not a terminal
      expect(out).not.toMatch(/\x1b\[/);
      const url = /gateway +(http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      demo.proc.kill('SIGINT');
      const { code } = await demo.exited;
      expect(code).toBe(0);
      expect(demo.stdout()).toMatch(/stopping/);
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    } finally {
      await demo.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--no-tour just serves', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phigate-demo-'));
    const demo = run(['demo', '--listen', '127.0.0.1:0', '--data-dir', dir, '--no-tour']);
    try {
      await demo.waitFor(/Press Ctrl-C to stop the demo/, 100_000);
      expect(demo.stdout()).not.toMatch(/Tour/);
      // One pasteable client-credentials login per dev identity; each works as printed.
      const url = /gateway +(http:\/\/127\.0\.0\.1:\d+)/.exec(demo.stdout())![1]!;
      const home = mkdtempSync(join(tmpdir(), 'phigate-demo-home-'));
      try {
        for (const who of ['alice', 'bob', 'carol', 'agent']) {
          const line = new RegExp(`^ {4}PHIGATE_CLIENT_ID=dev-${who} PHIGATE_CLIENT_SECRET=(dev-${who}-secret) (?:npx phigate|phigate|node \\S+) (login --client-credentials --server ${url} --profile ${who})$`, 'm')
            .exec(demo.stdout());
          expect(line, demo.stdout()).not.toBeNull();
          const login = run(line![2]!.split(' '), { PHIGATE_HOME: home, PHIGATE_CLIENT_ID: `dev-${who}`, PHIGATE_CLIENT_SECRET: line![1]! });
          expect((await login.exited).code, login.stderr()).toBe(0);
          expect(login.stdout()).toContain(`Logged in to ${url} as dev-${who} (service;`);
        }
        // The profile remembers its server: alice's connections, no --server needed.
        const list = run(['connections', '--profile', 'alice'], { PHIGATE_HOME: home, PHIGATE_SERVER: '' });
        expect((await list.exited).code, list.stderr()).toBe(0);
        expect(list.stdout()).toMatch(/^ehr\b/m);
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
      demo.proc.kill('SIGTERM');
      expect((await demo.exited).code).toBe(0);
    } finally {
      await demo.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a non-loopback address', async () => {
    const demo = run(['demo', '--listen', '0.0.0.0:0']);
    expect((await demo.exited).code).toBe(2);
    expect(demo.stderr()).toMatch(/loopback only/);
  });
});
