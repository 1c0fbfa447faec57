// `phigate demo` in a real pseudo-terminal (tmux), in a temporary HOME: the tour runs to its end on
// screen (an agent's read, the blocked DROP, the held DELETE approved by bob, the evidence), the audit
// log verifies, and Ctrl-C stops everything with exit 0.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../support/proc.js';
import { Tmux } from '../support/tmux.js';
import { expectTools } from '../support/expect-tools.js';
import { verifyLog } from '../../src/audit/verify.js';

const term = new Tmux('demo');
const tmux = (...args: string[]): string => term.run(...args);

/** The whole pane, scrollback included, with wrapped lines joined; a demo that exits stops the wait. */
const waitForScreen = (re: RegExp, timeoutMs: number): Promise<string> =>
  term.waitFor('demo', re, { timeoutMs, pollMs: 200, history: true, stop: (s) => (/EXIT=\d+/.test(s) ? 'phigate demo ended' : undefined) });

const home = mkdtempSync(join(tmpdir(), 'phigate-demo-home-'));
afterAll(() => {
  term.kill();
  rmSync(home, { recursive: true, force: true });
});

// A missing tool is a failure naming its package, never a silent skip.
const hasTools = expectTools('tmux', 'psql');

describe.skipIf(!hasTools)('phigate demo in a terminal', () => {
  it('plays the whole tour, leaves a verifiable audit log, and stops on Ctrl-C with exit 0', async () => {
    const dataDir = join(home, 'demo-data');
    // A fresh user: HOME and every phigate and XDG directory are new and empty.
    const env = { HOME: home, PHIGATE_HOME: join(home, '.config', 'phigate'), XDG_DATA_HOME: join(home, '.local', 'share'), TERM: 'xterm-256color' };
    const cmd = `cd ${JSON.stringify(home)} && ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} demo --listen 127.0.0.1:0 --data-dir ${JSON.stringify(dataDir)}; echo "EXIT=$?"; sleep 120`;
    term.start('demo', cmd, { x: 220, y: 50 }, env);

    const s = await waitForScreen(/Press Ctrl-C to stop the demo\./, 150_000);
    expect(s).not.toMatch(/The tour stopped/);
    expect(s).toMatch(/gateway +http:\/\/127\.0\.0\.1:\d+ +\(dev mode/);
    // 1: the agent's read through `phigate exec`
    expect(s).toMatch(/\[1\/4\] An agent reads patient rows/);
    expect(s).toMatch(/\$ phigate exec --name demo-agent --reason "tour: find patients" -- psql -X -c "SELECT id, mrn/);
    expect(s).toMatch(/\(5 rows\)/);
    // masked by the demo policy: tokenized MRN, redacted name and email, last four of the SSN, birth year
    expect(s).toMatch(/^ +6 \| tok_[0-9a-f]+ \| \*\*\* +\| \*\*\*-\*\*-\d{4} \| \d{4}-01-01 +\| \*\*\* +\| Springfield$/m);
    expect(s).not.toMatch(/MRN-\d{8}|patient\d+@example\.org/);
    // 2: the DROP is refused with psql's own error line
    expect(s).toMatch(/\[2\/4\] DDL is blocked/);
    expect(s).toMatch(/^ +ERROR: +phigate: blocked by rule "no-ddl": DDL is not allowed through phigate$/m);
    expect(s).toMatch(/psql exited with 1; table visits is untouched\./);
    // 3: the DELETE waits, bob approves, the DELETE completes
    const held = /phigate: waiting for approval (apr-[a-z0-9]+) \(rule "phi-writes"; approvers: privacy-officers\)/.exec(s);
    expect(held, s).not.toBeNull();
    const id = held![1]!;
    expect(s).toContain(`$ phigate approve ${id} --reason "duplicate visit, ticket EHR-1042"    # as bob`);
    expect(s).toMatch(new RegExp(`Approved ${id}: dev-agent \\(agent "demo-agent"\\) on ehr: DELETE FROM visits WHERE id = `));
    expect(s).toContain(`phigate: approval ${id} granted by dev-bob`);
    expect(s).toMatch(/^ +DELETE 1$/m);
    // Shown in order: waiting, bob's approval, then the DELETE finishing.
    expect(s.indexOf('waiting for approval')).toBeLessThan(s.indexOf(`Approved ${id}`));
    expect(s.indexOf(`Approved ${id}`)).toBeLessThan(s.search(/^ +DELETE 1$/m));
    // 4: the evidence as carol sees it
    expect(s).toMatch(/\[4\/4\] The evidence/);
    expect(s).toMatch(/\$ phigate audit search --user dev-agent --since 15m --limit 8 +# as carol/);
    expect(s).toMatch(/TIME \(UTC\) +SEQ +USER +CONNECTION +TYPE +DECISION/);
    expect(s).toMatch(/dev-agent +ehr +statement +approved +visits +DELETE FROM visits WHERE id = <n>/);
    expect(s).toMatch(/\$ phigate replay [0-9a-z-]+ +# as carol/);
    expect(s).toMatch(/Session [0-9a-z-]+: dev-agent \(agent "demo-agent"\) on ehr via psql/);
    expect(s).toMatch(/recording matches its seal/);
    expect(s).not.toMatch(/Warning|internal error/);
    expect(s).toMatch(/\$ phigate audit verify +# as carol\n +audit log intact: \d+ records/);
    expect(s).toMatch(/Tour complete\./);
    // then the server keeps running with what to try next
    expect(s).toMatch(/PHIGATE_CLIENT_ID=dev-bob PHIGATE_CLIENT_SECRET=dev-bob-secret .* login --client-credentials --server http:\/\/127\.0\.0\.1:\d+ --profile bob/);

    const live = await verifyLog(join(dataDir, 'audit'));
    expect(live.problems).toEqual([]);

    tmux('send-keys', '-t', 'demo', 'C-c');
    const end = await waitForScreen(/EXIT=\d+/, 60_000);
    expect(end).toMatch(/phigate demo: stopping \.\.\./);
    expect(end).toMatch(/EXIT=0/);
    const after = await verifyLog(join(dataDir, 'audit'));
    expect(after.problems).toEqual([]);
    expect(after.ok).toBe(true);
    expect(after.records).toBeGreaterThan(live.records - 1);
  }, 240_000);
});
