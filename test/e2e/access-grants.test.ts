// Just-in-time access: jit-agents must have access to `ehr-jit` approved before they may tunnel to it;
// the grant expires on time and the gateway then ends their live sessions with a clear error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startGateway, type Gw } from '../support/harness.js';
import { psql } from '../support/clients.js';

let gw: Gw;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => gw?.close());

async function pendingAccess(): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${gw.url}/v1/approvals`, { headers: { authorization: `Bearer ${await gw.token('bob')}` } });
    const a = ((await res.json()) as { approvals: { id: string; kind: string; statement: string; reason: string; status: string }[] }).approvals
      .find((x) => x.kind === 'access' && x.status === 'pending');
    if (a) return a.id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no pending access request');
}
const decide = async (id: string, verdict: 'approve' | 'deny', reason = 'on-call ticket'): Promise<void> => {
  const res = await fetch(`${gw.url}/v1/approvals/${id}/${verdict}`, {
    method: 'POST', headers: { authorization: `Bearer ${await gw.token('bob')}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason }),
  });
  expect(res.status).toBe(200);
};

describe('just-in-time access', () => {
  it('asks for a reason first, and says who must approve', async () => {
    const p = run(['connect', 'ehr-jit', '--server', gw.url], { PHIGATE_TOKEN: await gw.token('jitbot') });
    expect((await p.exited).code).toBe(2);
    expect(p.stderr()).toMatch(/access to "ehr-jit" must be approved by privacy-officers first/);
    expect(p.stderr()).toMatch(/--reason/);
  });

  it('refuses a duration above max_duration', async () => {
    const p = run(['connect', 'ehr-jit', '--server', gw.url, '--reason', 'x', '--duration', '3h'], { PHIGATE_TOKEN: await gw.token('jitbot') });
    expect((await p.exited).code).toBe(1);
    expect(p.stderr()).toMatch(/--duration 3h exceeds the maximum of 1h/);
  });

  it('a denied request exits 4 with the approver and reason', async () => {
    const p = run(['connect', 'ehr-jit', '--server', gw.url, '--reason', 'ticket 7'], { PHIGATE_TOKEN: await gw.token('jitbot') });
    const id = await pendingAccess();
    await decide(id, 'deny', 'use the replica');
    expect((await p.exited).code).toBe(4);
    expect(p.stderr()).toMatch(new RegExp(`access request ${id} denied by bob: use the replica`));
  });

  it('approved access opens the port; on expiry live sessions end and new ones are refused', async () => {
    const p = run(['connect', 'ehr-jit', '--server', gw.url, '--reason', 'ticket 8', '--duration', '4s'], { PHIGATE_TOKEN: await gw.token('jitbot') });
    const id = await pendingAccess();
    for (let i = 0; i < 50 && !p.stderr().includes('waiting for access approval'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(p.stderr()).toMatch(new RegExp(`waiting for access approval ${id} \\(approvers: privacy-officers\\)`));
    await decide(id, 'approve');
    const port = Number((await p.waitFor(/port=(\d+)/))[1]);
    expect(p.stderr()).toMatch(/access to "ehr-jit" granted by bob until /);
    expect((await psql(port, ['-tA', '-c', 'select 1'])).stdout.trim()).toBe('1');
    const long = await psql(port, ['-c', 'select pg_sleep(15)'], { timeoutMs: 20_000 });
    expect(long.code).not.toBe(0);
    expect(long.stderr).toMatch(new RegExp(`access to "ehr-jit" expired at .* \\(grant ${id}\\)`));
    const after = await psql(port, ['-c', 'select 1']);
    expect(after.code).not.toBe(0);
    expect(after.stderr).toMatch(/needs approved access to "ehr-jit" first/);
    await p.stop();
  });

  it('identities outside access_approval.groups connect directly', async () => {
    const c = await gw.connect('ehr-jit', await gw.token('alice'));
    expect((await psql(c.port, ['-tA', '-c', 'select 2'])).stdout.trim()).toBe('2');
    await c.stop();
  });
});
