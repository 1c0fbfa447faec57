// Policy lifecycle on a running gateway: `policy test` explains decisions, `policy apply` and SIGHUP
// activate a new version (admins only; an invalid one is refused and the old one stays), and
// `policy history` lists what was in force when.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayCli, run, startGateway, type Gw } from '../support/harness.js';
import { psql } from '../support/clients.js';

const BLOCK_DROP = `rules:
  - name: no-ddl
    when: { statement: [drop, truncate] }
    action: block
    message: DDL is not allowed through phigate
  - name: phi-writes
    when: { statement: [insert, update, delete], tables: [patients] }
    action: approve
    approvers: [privacy-officers]
default: allow
`;

let gw: Gw;
let port: number;
let original: string;

beforeAll(async () => {
  gw = await startGateway({ policy: BLOCK_DROP });
  original = readFileSync(gw.policyFile, 'utf8');
  port = (await gw.connect('ehr', await gw.token('alice'))).port;
});
afterAll(async () => gw?.close());

const cli = (args: string[], who: string): ReturnType<typeof gatewayCli> => gatewayCli(gw, who, args);
const dropVerdict = async (): Promise<string> => {
  const r = await psql(port, ['-c', 'DROP TABLE IF EXISTS never_there']);
  return /blocked by rule "no-ddl"/.test(r.stderr) ? 'blocked' : r.code === 0 ? 'allowed' : `error: ${r.stderr}`;
};

describe('phigate policy test', () => {
  it('explains a block, an approval and a CTE write, locally', async () => {
    const t = (sql: string) => run(['policy', 'test', '--file', gw.policyFile, '--sql', sql, '--groups', 'engineering', '--json']);
    const drop = t('DROP TABLE patients');
    expect((await drop.exited).code).toBe(0);
    expect(JSON.parse(drop.stdout())).toMatchObject({ decision: 'block', rule: 'no-ddl', connection: 'ehr', connection_access: 'allowed' });
    const cte = t('WITH d AS (DELETE FROM patients RETURNING *) SELECT * FROM d');
    await cte.exited;
    expect(JSON.parse(cte.stdout())).toMatchObject({ decision: 'approve', rule: 'phi-writes', approvers: ['privacy-officers'] });
    const bad = t('SELEC 1');
    await bad.exited;
    expect(JSON.parse(bad.stdout())).toMatchObject({ decision: 'block', reason: expect.stringMatching(/cannot classify/) });
    const human = run(['policy', 'test', '--file', gw.policyFile, '--sql', 'SELECT 1', '--groups', 'marketing']);
    await human.exited;
    expect(human.stdout()).toMatch(/decision +ALLOW/);
    expect(human.stdout()).toMatch(/connection refused: not a member/);
  });
});

describe('activating a policy', () => {
  it('policy apply by an admin takes effect for the next statement; others get exit 4', async () => {
    expect(await dropVerdict()).toBe('blocked');
    const next = join(gw.dir, 'next.yaml');
    writeFileSync(next, original.replace('[drop, truncate]', '[truncate]'));
    const denied = await cli(['policy', 'apply', next], 'alice');
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/only members of admins may change the policy/);
    // Issue 16 finding 6: the hint is about admin groups, not about a connection's allow_groups.
    expect(denied.stderr).toMatch(/hint: ask a member of admins \(the policy's identity\.admin_groups\) to apply it/);
    expect(denied.stderr).not.toMatch(/allow_groups/);
    const ok = await cli(['policy', 'apply', next], 'root');
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/^activated sha256:[0-9a-f]{64}$/m);
    expect(await dropVerdict()).toBe('allowed');
    const again = await cli(['policy', 'apply', next], 'root');
    expect(again.stdout).toMatch(/^unchanged/);
  });

  it('an invalid policy is refused with its line, and the one in force stays', async () => {
    const broken = join(gw.dir, 'broken.yaml');
    writeFileSync(broken, original.replace('action: block', 'action: maybe'));
    // the CLI validates locally first...
    const local = await cli(['policy', 'apply', broken], 'root');
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(/broken\.yaml:\d+:\d+: rules\.no-ddl\.action: expected one of allow, block, approve/);
    // ...and the server validates whatever it is sent
    const res = await fetch(`${gw.url}/admin/policy`, {
      method: 'POST', headers: { authorization: `Bearer ${await gw.token('root')}` }, body: 'version: 1\nconnections: {}\n',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_policy' });
    expect(await dropVerdict()).toBe('allowed');
  });

  it('SIGHUP re-reads the policy file; a broken file is logged and ignored', async () => {
    writeFileSync(gw.policyFile, original);
    gw.server.proc.kill('SIGHUP');
    for (let i = 0; i < 50 && !/policy activated.*source=sighup/.test(gw.server.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await dropVerdict()).toBe('blocked');
    writeFileSync(gw.policyFile, original.replace('version: 1', 'version: 7'));
    gw.server.proc.kill('SIGHUP');
    for (let i = 0; i < 50 && !/policy reload rejected/.test(gw.server.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(gw.server.stderr()).toMatch(/policy reload rejected; the previous policy stays in force .*version: expected 1, got 7/);
    expect(await dropVerdict()).toBe('blocked');
  });

  it('policy history lists every activation, newest first, for admins and auditors only', async () => {
    const r = await cli(['policy', 'history', '--json'], 'carol');
    expect(r.code).toBe(0);
    const h = JSON.parse(r.stdout) as { current: string; history: { source: string; version: string; by?: string }[] };
    expect(h.history.map((e) => e.source)).toEqual(['sighup', 'api', 'startup']);
    expect(h.history[0]!.version).toBe(h.current);
    expect(h.history[2]!.version).toBe(h.current); // the original policy is back in force
    expect(h.history[1]).toMatchObject({ by: 'root' });
    expect((await cli(['policy', 'history'], 'alice')).code).toBe(4);
  });
});
