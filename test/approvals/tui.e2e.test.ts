// `phigate approve` (no ID) in a real pseudo-terminal (tmux): it lists what is waiting, shows a new
// request without a keypress, approves with a reason, cancels a prompt with esc, and quits with q.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../support/proc.js';
import { Tmux } from '../support/tmux.js';
import { expectTools } from '../support/expect-tools.js';
import { startInProcessGateway, type InProcessGateway } from './gateway.js';
import { settle } from './support.js';

const term = new Tmux('approvals');
const tmux = (...args: string[]): string => term.run(...args);

let g: InProcessGateway;
beforeAll(async () => {
  g = await startInProcessGateway();
});
afterAll(async () => {
  term.kill();
  await g?.close();
});

async function startTui(name: string, session: string, env: Record<string, string> = {}): Promise<void> {
  const token = await g.idp.mint(name);
  // CI is unset in the pane (env -u): under CI, ink renders only its last frame and colours are
  // switched off, but this is a real terminal.
  const vars = { PHIGATE_TOKEN: token, PHIGATE_HOME: mkdtempSync(join(tmpdir(), 'phigate-home-')), TERM: 'xterm-256color', ...env };
  // The shell keeps the pane (and the exit code) on screen after phigate ends.
  const cmd = `env -u CI -u CONTINUOUS_INTEGRATION ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} approve --server ${g.url}; echo "EXIT=$?"; sleep 60`;
  term.start(session, cmd, { x: 150, y: 40 }, vars);
}

const screen = (session: string, escapes = false): string => term.screen(session, { escapes });

/** An SGR sequence that sets a foreground colour (39, the reset, does not count). */
const COLOUR = /\x1b\[(?:[\d;]*;)?(?:3[0-8]|9[0-7])(?:;[\d;]*)?m/;

const waitForScreen = (session: string, re: RegExp, timeoutMs = 40_000): Promise<string> => term.waitFor(session, re, { timeoutMs });

// A missing tool is a failure naming its package, never a silent skip.
const hasTmux = expectTools('tmux');

describe.skipIf(!hasTmux)('phigate approve (live view in a terminal)', () => {
  it('lists, updates live, approves with a reason, cancels with esc, quits with q', async () => {
    const first = g.request();
    await settle();
    await startTui('bob', 'tui');
    let s = await waitForScreen('tui', /live · 1 waiting/);
    expect(s).toContain(first.id);
    expect(screen('tui', true)).toMatch(COLOUR);
    // The details pane of the selected (only) request.
    expect(s).toMatch(/requester +alice \(agent "claude"\) +\[agent\]/);
    expect(s).toMatch(/connection +ehr/);
    expect(s).toMatch(/rule +phi-writes: writes to PHI tables need a privacy officer/);
    expect(s).toMatch(/tables +patients/);
    expect(s).toMatch(/time left +1[45]m \d\ds/);
    expect(s).toContain('DELETE FROM patients WHERE id = $1');

    // A new request shows up without any key being pressed.
    const second = g.request({ statement: 'UPDATE visits SET note = $1 WHERE id = $2', tables: ['visits'], timeoutMs: 30 * 60_000 });
    s = await waitForScreen('tui', /live · 2 waiting/);
    expect(s).toContain(second.id);

    // The first one expires first, so it is on top and selected: approve it with a reason.
    tmux('send-keys', '-t', 'tui', 'a');
    await waitForScreen('tui', new RegExp(`Releases: this execution only[\\s\\S]*Reason for approving once ${first.id} \\(enter to confirm, esc to cancel\\)`));
    tmux('send-keys', '-t', 'tui', '-l', 'ticket 42');
    await waitForScreen('tui', /esc to cancel\): ticket 42/);
    tmux('send-keys', '-t', 'tui', 'Enter');
    expect(await first.outcome).toEqual({ approved: true, approver: 'bob', scope: 'once', reason: 'ticket 42' });
    // The live list can drop the row before the POST's answer comes back ("sending..."): wait for both.
    s = await waitForScreen('tui', new RegExp(`live · 1 waiting[\\s\\S]*Approved ${first.id}`));
    expect(s).toContain('UPDATE visits SET note = $1 WHERE id = $2');

    // d opens the prompt, even with the reason typed right behind it; esc cancels, nothing is decided.
    tmux('send-keys', '-t', 'tui', '-l', 'dnot now');
    await waitForScreen('tui', new RegExp(`Reason for denying ${second.id} \\(enter to confirm, esc to cancel\\): not now`));
    tmux('send-keys', '-t', 'tui', 'Escape');
    await waitForScreen('tui', /cancelled/);
    const still = await Promise.race([second.outcome, new Promise((r) => setTimeout(() => r('pending'), 100))]);
    expect(still).toBe('pending');

    // Decided elsewhere: the row goes away and the view says so.
    second.withdraw('client went away');
    s = await waitForScreen('tui', /live · 0 waiting/);
    expect(s).toContain(`${second.id} withdrawn`);
    expect(s).toContain('No requests waiting for you');

    tmux('send-keys', '-t', 'tui', 'q');
    await waitForScreen('tui', /EXIT=0/);
  });

  it('p shows what a shape releases and approves it with a reason (an empty one is refused); the requester sees their own request but cannot decide it; NO_COLOR has no colours', async () => {
    const h = g.request();
    await settle();
    await startTui('alice', 'own', { NO_COLOR: '1' });
    await waitForScreen('own', new RegExp(`${h.id}.*yours`));
    tmux('send-keys', '-t', 'own', 'a');
    await waitForScreen('own', new RegExp(`you cannot decide ${h.id}: it is your own request`));
    expect(screen('own', true)).not.toMatch(COLOUR);
    tmux('send-keys', '-t', 'own', 'q');
    await waitForScreen('own', /EXIT=0/);

    await startTui('carol', 'carol');
    await waitForScreen('carol', new RegExp(h.id));
    tmux('send-keys', '-t', 'carol', 'p');
    await waitForScreen('carol', /Releases: any statement of this shape for the rest of the session, whatever its literals: DELETE FROM patients WHERE id = \$1[\s\S]*Reason for approving this shape/);
    tmux('send-keys', '-t', 'carol', 'Enter');
    await waitForScreen('carol', /a reason is required to approve/);
    tmux('send-keys', '-t', 'carol', '-l', 'pmigration window');
    await waitForScreen('carol', /esc to cancel\): migration window/);
    tmux('send-keys', '-t', 'carol', 'Enter');
    expect(await h.outcome).toEqual({ approved: true, approver: 'carol', scope: 'shape', reason: 'migration window' });
    await waitForScreen('carol', new RegExp(`Approved ${h.id} for statements of this shape \\(any literals\\) for the rest of the session`));
    tmux('send-keys', '-t', 'carol', 'q');
    await waitForScreen('carol', /EXIT=0/);
  });

  it('ends with exit 3 when the gateway does not accept the token', async () => {
    tmux('new-session', '-d', '-s', 'bad', '-x', '120', '-y', '20', '-e', 'PHIGATE_TOKEN=not-a-jwt', 
      `env -u CI -u CONTINUOUS_INTEGRATION ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} approve --server ${g.url}; echo "EXIT=$?"; sleep 60`);
    const s = await waitForScreen('bad', /EXIT=\d/);
    expect(s).toMatch(/EXIT=3/);
    expect(s).toMatch(/phigate: gateway refused: /);
  });
});
