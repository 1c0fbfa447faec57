// `phigate approvals` and `phigate approve ID` as real processes against a real gateway (in-process,
// so the test makes the requests and sees their outcomes), plus the HTTP API's edges and the stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ApprovalView, StreamMessage } from '../../src/approvals/api.js';
import type { ApprovalsReport } from '../../src/cli/commands/approvals.js';
import type { ApproveReport } from '../../src/cli/commands/approve.js';
import { startInProcessGateway, type InProcessGateway } from './gateway.js';
import { settle } from './support.js';

let g: InProcessGateway;
beforeAll(async () => {
  g = await startInProcessGateway();
});
afterAll(async () => g?.close());

describe('phigate approvals', () => {
  it('lists a held statement for an approver (JSON and table), nothing for an outsider', async () => {
    const h = g.request();
    await settle();
    const bob = await g.cli('bob', ['approvals', '--json']);
    expect(bob.code).toBe(0);
    const report = JSON.parse(bob.stdout) as ApprovalsReport;
    const mine = report.approvals.find((a) => a.id === h.id);
    expect(mine).toMatchObject({
      status: 'pending', can_decide: true, own: false, connection: 'ehr', rule: 'phi-writes',
      statement: 'DELETE FROM patients WHERE id = $1', tables: ['patients'], approvers: ['privacy-officers'],
      requester: { name: 'alice', kind: 'agent', label: 'claude' },
    });
    expect(report.server).toBe(g.url);

    const table = await g.cli('bob', ['approvals']);
    const header = table.stdout.split('\n')[0];
    expect(header).toMatch(/^ID +AGE +REQUESTER +CONNECTION +RULE +STATEMENT +EXPIRES IN +STATUS$/);
    const row = table.stdout.split('\n').find((l) => l.startsWith(h.id));
    // 120 columns when not on a terminal: the statement column gives way first.
    expect(row).toMatch(/alice \(agent "claude"\) +ehr +phi-writes +DELETE FROM patients WHERE id(?: = \$1|\.\.\.) +1[45]m \d\ds +pending/);

    const mallory = await g.cli('mallory', ['approvals', '--json']);
    expect((JSON.parse(mallory.stdout) as ApprovalsReport).approvals).toEqual([]);
    h.withdraw('test done');
  });

  it('tells someone in no approver group that nothing will wait for them, and who approves', async () => {
    const alice = await g.cli('alice', ['approvals']);
    expect(alice.code).toBe(0);
    expect(alice.stdout).toBe(`You (alice) are not an approver on ${g.url}: none of your groups (engineering) approves anything; ` +
      'requests there are decided by members of privacy-officers.\n');
    const json = JSON.parse((await g.cli('alice', ['approvals', '--json'])).stdout) as ApprovalsReport;
    expect(json).toMatchObject({ approvals: [], viewer: { name: 'alice', groups: ['engineering'] }, approver_groups: ['privacy-officers'] });
    // An approver with nothing pending hears just that.
    expect((await g.cli('carol', ['approvals'])).stdout).toBe(`No approval requests waiting for you on ${g.url}.\n`);
  });

  it('exits 3 without a valid token', async () => {
    const r = await g.cli('bob', ['approvals', '--token-file', '/nonexistent/token']);
    expect(r.code).toBe(3);
    const { run } = await import('../support/proc.js');
    const p = run(['approvals', '--server', g.url], { PHIGATE_TOKEN: 'not-a-jwt' });
    expect((await p.exited).code).toBe(3);
    expect(p.stderr()).toMatch(/^phigate: gateway refused: /);
  });
});

describe('phigate approve ID', () => {
  it('as bob approves: the waiting statement is released, approved by bob', async () => {
    const h = g.request();
    await settle();
    const r = await g.cli('bob', ['approve', h.id, '--reason', 'ticket 1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Approved ${h.id}: alice (agent "claude") on ehr: DELETE FROM patients WHERE id = $1 (rule phi-writes)\n  reason: ticket 1\n`);
    expect(await h.outcome).toEqual({ approved: true, approver: 'bob', scope: 'once', reason: 'ticket 1' });
  });

  it('as the requester exits 4 (separation of duties), as an outsider exits 4; the statement keeps waiting', async () => {
    const h = g.request();
    await settle();
    const alice = await g.cli('alice', ['approve', h.id]);
    expect(alice.code).toBe(4);
    expect(alice.stderr).toMatch(/^phigate: alice cannot decide apr-\w+: it is their own request \(separation of duties\)\nhint: /);
    const mallory = await g.cli('mallory', ['approve', h.id, '--deny']);
    expect(mallory.code).toBe(4);
    expect(mallory.stderr).toContain(`phigate: ${h.id} needs an approver from privacy-officers; mallory is in marketing`);
    const auditor = await g.cli('audrey', ['approve', h.id]);
    expect(auditor.code).toBe(4);
    const still = await Promise.race([h.outcome, new Promise((r) => setTimeout(() => r('pending'), 50))]);
    expect(still).toBe('pending');
    h.withdraw('test done');
  });

  it('--deny --reason gives the reason in the outcome; --json prints the decided request', async () => {
    const h = g.request();
    await settle();
    const r = await g.cli('bob', ['approve', h.id, '--deny', '--reason', 'use the archive job instead', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as ApproveReport;
    expect(report.approval).toMatchObject({ id: h.id, status: 'denied', decision: { approved: false, cause: 'denied', approver: 'bob', reason: 'use the archive job instead' } });
    expect(await h.outcome).toEqual({ approved: false, cause: 'denied', approver: 'bob', reason: 'use the archive job instead' });
  });

  it('--scope says what an approval releases; the old --session still means this statement text, with a warning', async () => {
    for (const scope of ['statement', 'shape', 'session'] as const) {
      const h = g.request();
      await settle();
      const r = await g.cli('carol', ['approve', h.id, '--scope', scope, '--reason', 'migration window']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/for the rest of the session/);
      expect(await h.outcome).toEqual({ approved: true, approver: 'carol', scope, reason: 'migration window' });
    }
    const h = g.request();
    await settle();
    const old = await g.cli('carol', ['approve', h.id, '--session', '--reason', 'migration window']);
    expect(old.code).toBe(0);
    expect(old.stderr).toMatch(/--session is deprecated; it means --scope statement/);
    expect(old.stdout).toMatch(/for this statement text for the rest of the session/);
    expect(await h.outcome).toEqual({ approved: true, approver: 'carol', scope: 'statement', reason: 'migration window' });
    expect((await g.cli('carol', ['approve', 'apr-x', '--scope', 'everything'])).code).toBe(2);
  });

  it('exits 1 when already decided or unknown, and shows decided ones with --all', async () => {
    const h = g.request();
    await settle();
    await g.gateway.approvals.decide(h.id, { subject: 'carol', issuer: g.idp.issuer, name: 'carol', groups: ['privacy-officers'], kind: 'service', owner: 'carol', expiresAt: new Date(Date.now() + 60_000) }, { approve: true, reason: 'ticket 5' });
    const again = await g.cli('bob', ['approve', h.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(new RegExp(`^phigate: ${h.id} was already approved by carol at `));
    const unknown = await g.cli('bob', ['approve', 'apr-zzzzzz']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no approval request apr-zzzzzz/);
    const all = JSON.parse((await g.cli('bob', ['approvals', '--all', '--json'])).stdout) as ApprovalsReport;
    expect(all.approvals.find((a) => a.id === h.id)).toMatchObject({ status: 'approved', can_decide: false, decision: { approver: 'carol' } });
    const pendingOnly = JSON.parse((await g.cli('bob', ['approvals', '--json'])).stdout) as ApprovalsReport;
    expect(pendingOnly.approvals.find((a) => a.id === h.id)).toBeUndefined();
  });

  it('without an ID and without a terminal is a usage error', async () => {
    const r = await g.cli('bob', ['approve']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/an approval ID is needed when not on a terminal/);
    expect((await g.cli('bob', ['approve', 'apr-x', '--deny', '--session'])).code).toBe(2);
  });
});

describe('approvals HTTP API', () => {
  const call = async (path: string, init: RequestInit & { as?: string } = {}): Promise<{ status: number; body: { error?: string; message?: string } }> => {
    const headers: Record<string, string> = {};
    if (init.as) headers['authorization'] = `Bearer ${await g.idp.mint(init.as)}`;
    const res = await fetch(`${g.url}${path}`, { ...init, headers });
    return { status: res.status, body: (await res.json()) as { error?: string; message?: string } };
  };

  it('answers refusals like the rest of the gateway, and bad input with 400/405', async () => {
    expect(await call('/v1/approvals')).toMatchObject({ status: 401, body: { error: 'unauthenticated' } });
    expect(await call('/v1/approvals/apr-abc/approve', { method: 'POST' })).toMatchObject({ status: 401, body: { error: 'unauthenticated' } });
    expect(await call('/v1/approvals/apr-abc/approve', { method: 'GET', as: 'bob' })).toMatchObject({ status: 405 });
    expect(await call('/v1/approvals/stream', { as: 'bob' })).toMatchObject({ status: 400, body: { error: 'bad_request' } });
    expect(await call('/v1/approvals/apr-abc', { as: 'bob' })).toMatchObject({ status: 404, body: { error: 'not_found' } });
    const h = g.request();
    await settle();
    expect(await call(`/v1/approvals/${h.id}/approve`, { method: 'POST', as: 'bob', body: '{nope' })).toMatchObject({ status: 400 });
    expect(await call(`/v1/approvals/${h.id}/deny`, { method: 'POST', as: 'bob', body: '{"scope":"session"}' })).toMatchObject({ status: 400 });
    expect(await call(`/v1/approvals/${h.id}`, { as: 'mallory' })).toMatchObject({ status: 403, body: { error: 'not_an_approver' } });
    expect(await call(`/v1/approvals/${h.id}/approve`, { method: 'POST', as: 'alice' })).toMatchObject({ status: 403, body: { error: 'self_approval' } });
    expect((await call(`/v1/approvals/${h.id}`, { as: 'audrey' })).status).toBe(200);
    expect(await call(`/v1/approvals/${h.id}/approve`, { method: 'POST', as: 'bob', body: '{"reason":"ticket 2"}' })).toMatchObject({ status: 200 });
    expect(await call(`/v1/approvals/${h.id}/deny`, { method: 'POST', as: 'carol' })).toMatchObject({ status: 409, body: { error: 'already_decided' } });
    // The gateway's other endpoints still refuse other methods.
    expect((await fetch(`${g.url}/v1/connections`, { method: 'POST' })).status).toBe(405);
  });

  it('streams the viewer\'s list, then every change as it happens', async () => {
    const open = async (name: string): Promise<{ msgs: StreamMessage[]; ws: WebSocket }> => {
      const msgs: StreamMessage[] = [];
      const ws = new WebSocket(`${g.url.replace('http', 'ws')}/v1/approvals/stream`, { headers: { authorization: `Bearer ${await g.idp.mint(name)}` } });
      ws.on('message', (d) => msgs.push(JSON.parse(d.toString()) as StreamMessage));
      await new Promise((r, j) => ws.once('open', r).once('error', j));
      await expect.poll(() => msgs.length).toBe(1);
      return { msgs, ws };
    };
    const first = g.request();
    await settle();
    const bob = await open('bob');
    const mallory = await open('mallory');
    const snap = bob.msgs[0];
    expect(snap?.type).toBe('snapshot');
    expect(snap?.type === 'snapshot' && snap.approvals.map((a: ApprovalView) => a.id)).toContain(first.id);
    expect(mallory.msgs[0]).toMatchObject({ type: 'snapshot', approvals: [] });

    const second = g.request({ statement: 'UPDATE visits SET note = $1 WHERE id = $2', tables: ['visits'] });
    await expect.poll(() => bob.msgs.some((m) => m.type === 'requested' && m.approval.id === second.id)).toBe(true);
    first.withdraw('client went away');
    await expect.poll(() => bob.msgs.some((m) => m.type === 'withdrawn' && m.approval.id === first.id)).toBe(true);
    await g.cli('bob', ['approve', second.id, '--reason', 'ticket 3']);
    await expect.poll(() => bob.msgs.find((m) => m.type === 'decided' && m.approval.id === second.id)).toMatchObject({ approval: { status: 'approved' } });
    expect(mallory.msgs).toHaveLength(1);

    const refused = new WebSocket(`${g.url.replace('http', 'ws')}/v1/approvals/stream`);
    const status = await new Promise<number | undefined>((r) => refused.once('unexpected-response', (_q, res) => r(res.statusCode)).once('open', () => r(101)));
    expect(status).toBe(401);
    bob.ws.close();
    mallory.ws.close();
  });
});
