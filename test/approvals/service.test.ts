// The approval service on a fake clock: decisions, timeouts, withdrawals, separation of duties,
// who sees what, and the live events subscribers get.
import { describe, expect, it } from 'vitest';
import { ApprovalError, ApprovalService, DEFAULT_APPROVAL_RULES, type ApprovalEvent } from '../../src/approvals/service.js';
import { MemoryApprovalStore } from '../../src/approvals/store.js';
import type { Outcome } from '../../src/approvals/types.js';
import { FakeClock, ISSUER, heldDelete, settle, who } from './support.js';

const bob = who('bob', ['privacy-officers']);
const carol = who('carol', ['privacy-officers']);
const mallory = who('mallory', ['marketing']);
const auditor = who('audrey', ['auditors']);

function setup(opts: { keepSettled?: number } = {}): { clock: FakeClock; service: ApprovalService; events: ApprovalEvent[] } {
  const clock = new FakeClock();
  const service = new ApprovalService({ clock, ...opts });
  const events: ApprovalEvent[] = [];
  service.subscribe((e) => events.push(e));
  return { clock, service, events };
}

/** The outcome if it has resolved by now, else 'pending'. */
async function peek(p: Promise<Outcome>): Promise<Outcome | 'pending'> {
  await settle();
  return Promise.race([p, Promise.resolve('pending' as const)]);
}

async function refusal(p: Promise<unknown>): Promise<ApprovalError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApprovalError);
  return err as ApprovalError;
}

describe('ApprovalService', () => {
  it('gives requests short, typeable ids and an expiry from the rule timeout', async () => {
    const { service, clock } = setup();
    const h = service.request(heldDelete({ timeoutMs: 60_000 }));
    expect(h.id).toMatch(/^apr-[a-km-np-z2-9]{6}$/);
    await settle();
    const [r] = await service.list(bob);
    expect(r?.createdAt).toBe(new Date(clock.t).toISOString());
    expect(r?.expiresAt).toBe(new Date(clock.t + 60_000).toISOString());
  });

  it('releases the statement when an eligible approver approves', async () => {
    const { service } = setup();
    const h = service.request(heldDelete());
    await settle();
    expect(await peek(h.outcome)).toBe('pending');
    const r = await service.decide(h.id, bob, { approve: true, reason: 'ok' });
    expect(r.status).toBe('approved');
    expect(await h.outcome).toEqual({ approved: true, approver: 'bob', scope: 'once', reason: 'ok' });
  });

  it('records "for this session" in the outcome so the session can release repeats', async () => {
    const { service } = setup();
    const h = service.request(heldDelete());
    await settle();
    await service.decide(h.id, bob, { approve: true, scope: 'session', reason: 'cleanup ticket 42' });
    expect(await h.outcome).toEqual({ approved: true, approver: 'bob', scope: 'session', reason: 'cleanup ticket 42' });
    const [r] = await service.list(bob, { all: true });
    expect(r?.settlement?.scope).toBe('session');
  });

  it('refuses with the approver and reason on deny', async () => {
    const { service } = setup();
    const h = service.request(heldDelete());
    await settle();
    await service.decide(h.id, bob, { approve: false, reason: '  use the archive job instead ' });
    expect(await h.outcome).toEqual({ approved: false, approver: 'bob', cause: 'denied', reason: 'use the archive job instead' });
  });

  it('times out on the rule timeout and then refuses late decisions', async () => {
    const { service, clock, events } = setup();
    const h = service.request(heldDelete({ timeoutMs: 10 * 60_000 }));
    await settle();
    await clock.advance(10 * 60_000 - 1);
    expect(await peek(h.outcome)).toBe('pending');
    await clock.advance(1);
    expect(await h.outcome).toEqual({ approved: false, cause: 'timeout' });
    expect(events.map((e) => e.type)).toEqual(['requested', 'expired']);
    const late = await refusal(service.decide(h.id, bob, { approve: true, reason: 'ok' }));
    expect(late.code).toBe('already_decided');
    expect(late.message).toMatch(/timed out/);
    expect(clock.pendingTimers).toBe(0);
  });

  it('resolves withdrawn when the requester gives up, and stops the timer', async () => {
    const { service, clock } = setup();
    const h = service.request(heldDelete());
    await settle();
    h.withdraw('client disconnected');
    expect(await h.outcome).toEqual({ approved: false, cause: 'withdrawn', reason: 'client disconnected' });
    expect(clock.pendingTimers).toBe(0);
    expect((await refusal(service.decide(h.id, bob, { approve: true, reason: 'ok' }))).code).toBe('already_decided');
  });

  it('does not lose a withdrawal that comes before the request is stored', async () => {
    const { service } = setup();
    const h = service.request(heldDelete());
    h.withdraw('cancelled at once');
    expect(await h.outcome).toMatchObject({ approved: false, cause: 'withdrawn' });
  });

  describe('separation of duties', () => {
    it('refuses the requester even when they are in an approver group', async () => {
      const { service } = setup();
      const h = service.request(heldDelete({
        requester: { subject: 'bob', issuer: ISSUER, name: 'bob', groups: ['privacy-officers'], kind: 'human' },
      }));
      await settle();
      const e = await refusal(service.decide(h.id, bob, { approve: true, reason: 'ok' }));
      expect(e.code).toBe('self_approval');
      expect(e.message).toMatch(/own request/);
      expect(await peek(h.outcome)).toBe('pending');
    });

    it('refuses the same human under another issuer or as a service that stands for them', async () => {
      const { service } = setup();
      const h = service.request(heldDelete({ requester: { ...heldDelete().requester, person: 'alice' } }));
      await settle();
      const aliceElsewhere = who('alice', ['privacy-officers'], { subject: 'u-123', issuer: 'https://other-idp.test' });
      expect((await refusal(service.decide(h.id, aliceElsewhere, { approve: true, reason: 'ok' }))).code).toBe('self_approval');
      const aliceBot = who('svc-7', ['privacy-officers'], { kind: 'service', clientId: 'svc-7', owner: 'Alice ' });
      expect((await refusal(service.decide(h.id, aliceBot, { approve: true, reason: 'ok' }))).code).toBe('self_approval');
      expect(await peek(h.outcome)).toBe('pending');
    });

    it('issue 16 finding 2: a service that stands for no person cannot decide, unless the policy allows it', async () => {
      const { service } = setup();
      const h = service.request(heldDelete());
      await settle();
      const orphan = who('ci-bot', ['privacy-officers'], { kind: 'service', clientId: 'ci-bot' });
      const e = await refusal(service.decide(h.id, orphan, { approve: true, reason: 'ok' }));
      expect(e.code).toBe('unowned_service');
      expect(e.message).toMatch(/service_owners/);
      expect(service.mayDecide((await service.get(h.id, orphan)), orphan)).toBe(false);
      const lenient = new ApprovalService({ clock: new FakeClock(), rules: () => ({ ...DEFAULT_APPROVAL_RULES, unownedServiceApprovers: 'allow' }) });
      const h2 = lenient.request(heldDelete());
      await settle();
      expect((await lenient.decide(h2.id, orphan, { approve: true, reason: 'nightly job' })).status).toBe('approved');
    });

    it('issue 16 finding 4: a label is never taken for a person (a requester cannot block an approver by naming a session after them)', async () => {
      const { service } = setup();
      const h = service.request(heldDelete({ requester: { ...heldDelete().requester, label: ' BOB ', person: 'alice' } }));
      await settle();
      expect((await service.decide(h.id, bob, { approve: true, reason: 'ok' })).status).toBe('approved');
      // A service named like the label is not the requester either: it is judged by its owner.
      const h2 = service.request(heldDelete({ requester: { ...heldDelete().requester, label: 'claude', person: 'alice' } }));
      await settle();
      const claudeBot = who('claude', ['privacy-officers'], { kind: 'service', owner: 'carol' });
      expect((await service.decide(h2.id, claudeBot, { approve: true, reason: 'ok' })).status).toBe('approved');
    });

    it('issue 16 finding 6: approving or denying needs a reason unless the policy says otherwise', async () => {
      const { service } = setup();
      const h = service.request(heldDelete());
      await settle();
      for (const reason of [undefined, '', '   ']) {
        const e = await refusal(service.decide(h.id, bob, { approve: true, ...(reason === undefined ? {} : { reason }) }));
        expect(e.code).toBe('reason_required');
        expect(e.message).toMatch(/--reason/);
      }
      expect((await refusal(service.decide(h.id, bob, { approve: false, reason: ' ' }))).code).toBe('reason_required');
      expect(await peek(h.outcome)).toBe('pending');
      const relaxed = new ApprovalService({ clock: new FakeClock(), rules: () => ({ ...DEFAULT_APPROVAL_RULES, reasonRequired: false }) });
      const h2 = relaxed.request(heldDelete());
      await settle();
      expect((await relaxed.decide(h2.id, bob, { approve: true })).status).toBe('approved');
    });

    it('refuses an approver outside the rule\'s approver groups', async () => {
      const { service } = setup();
      const h = service.request(heldDelete());
      await settle();
      const e = await refusal(service.decide(h.id, mallory, { approve: true, reason: 'ok' }));
      expect(e.code).toBe('not_an_approver');
      expect(e.message).toBe(`${h.id} needs an approver from privacy-officers; mallory is in marketing`);
      // Oversight is read-only: auditors may look, not decide.
      expect((await refusal(service.decide(h.id, auditor, { approve: true, reason: 'ok' }))).code).toBe('not_an_approver');
      expect(await peek(h.outcome)).toBe('pending');
    });

    it('refuses a second decision and names who decided first', async () => {
      const { service } = setup();
      const h = service.request(heldDelete());
      await settle();
      await service.decide(h.id, bob, { approve: false, reason: 'no' });
      const e = await refusal(service.decide(h.id, carol, { approve: true, reason: 'ok' }));
      expect(e.code).toBe('already_decided');
      expect(e.message).toMatch(new RegExp(`^${h.id} was already denied by bob at `));
      expect(await h.outcome).toMatchObject({ approved: false, cause: 'denied' });
    });

    it('lets exactly one of two racing approvers win', async () => {
      const { service } = setup();
      const h = service.request(heldDelete());
      await settle();
      const results = await Promise.allSettled([
        service.decide(h.id, bob, { approve: true, reason: 'ok' }),
        service.decide(h.id, carol, { approve: false, reason: 'no' }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect((lost.reason as ApprovalError).code).toBe('already_decided');
    });

    it('reports an unknown id as not found', async () => {
      const { service } = setup();
      expect((await refusal(service.decide('apr-zzzzzz', bob, { approve: true, reason: 'ok' }))).code).toBe('not_found');
      expect((await refusal(service.get('apr-zzzzzz', bob))).code).toBe('not_found');
    });
  });

  it('lists what each viewer may see: approvers and the requester their requests, oversight everything', async () => {
    const { service } = setup();
    const a = service.request(heldDelete());
    const b = service.request(heldDelete({ rule: 'finance', approvers: ['finance-leads'], connection: 'billing' }));
    await settle();
    const ids = async (v: Parameters<ApprovalService['list']>[0], all = false): Promise<string[]> =>
      (await service.list(v, { all })).map((r) => r.id);
    expect(await ids(bob)).toEqual([a.id]);
    expect(await ids(mallory)).toEqual([]);
    expect(await ids(who('fin', ['finance-leads']))).toEqual([b.id]);
    expect(await ids(auditor)).toEqual([a.id, b.id]);
    expect(await ids(who('root', ['admins']))).toEqual([a.id, b.id]);
    expect(await ids(who('alice', ['engineering']))).toEqual([a.id, b.id]);
    expect((await refusal(service.get(a.id, mallory))).code).toBe('not_an_approver');
    expect((await service.get(a.id, auditor)).id).toBe(a.id);

    await service.decide(a.id, bob, { approve: true, reason: 'ok' });
    expect(await ids(bob)).toEqual([]);
    expect(await ids(bob, true)).toEqual([a.id]);
    expect(await ids(auditor, true)).toEqual([b.id, a.id]);
  });

  it("oversight is the policy's admin and auditor groups, read at each call, not fixed names", async () => {
    let oversight: string[] = ['compliance', 'security-admins'];
    const service = new ApprovalService({ clock: new FakeClock(), rules: () => ({ ...DEFAULT_APPROVAL_RULES, oversightGroups: oversight }) });
    const a = service.request(heldDelete());
    await settle();
    const ids = async (v: Parameters<ApprovalService['list']>[0]): Promise<string[]> => (await service.list(v)).map((r) => r.id);
    // Groups named `admins`/`auditors` are nobody special under this policy.
    expect(await ids(auditor)).toEqual([]);
    expect(await ids(who('root', ['admins']))).toEqual([]);
    expect((await refusal(service.get(a.id, auditor))).code).toBe('not_an_approver');
    expect(await ids(who('cathy', ['compliance']))).toEqual([a.id]);
    expect((await service.get(a.id, who('sam', ['security-admins']))).id).toBe(a.id);
    expect(service.maySee((await service.get(a.id, bob)), who('cathy', ['compliance']))).toBe(true);
    // A new policy version takes effect without a restart.
    oversight = ['auditors'];
    expect(await ids(auditor)).toEqual([a.id]);
    expect(await ids(who('cathy', ['compliance']))).toEqual([]);
  });

  it('keeps the last N settled requests for --all', async () => {
    const { service } = setup({ keepSettled: 2 });
    const hs = [0, 1, 2].map(() => service.request(heldDelete()));
    await settle();
    for (const h of hs) await service.decide(h.id, bob, { approve: true, reason: 'ok' });
    expect((await service.list(bob, { all: true })).map((r) => r.id)).toEqual([hs[2]!.id, hs[1]!.id]);
  });

  it('tells subscribers about every request, decision, expiry and withdrawal, in order', async () => {
    const { service, clock, events } = setup();
    const seen: string[] = [];
    const unsubscribe = service.subscribe((e) => seen.push(`${e.type}:${e.approval.id}:${e.approval.status}`));
    service.subscribe(() => {
      throw new Error('a broken listener must not stop the others');
    });
    const a = service.request(heldDelete());
    const b = service.request(heldDelete({ timeoutMs: 1_000 }));
    const c = service.request(heldDelete());
    await settle();
    await service.decide(a.id, bob, { approve: false, reason: 'no' });
    await clock.advance(1_000);
    c.withdraw('client went away');
    await c.outcome;
    await settle();
    expect(seen).toEqual([
      `requested:${a.id}:pending`, `requested:${b.id}:pending`, `requested:${c.id}:pending`,
      `decided:${a.id}:denied`, `expired:${b.id}:expired`, `withdrawn:${c.id}:withdrawn`,
    ]);
    expect(events).toHaveLength(6);
    unsubscribe();
    service.request(heldDelete());
    await settle();
    expect(seen).toHaveLength(6);
    expect(events).toHaveLength(7);
  });

  it('fails closed when a request cannot be stored', async () => {
    const store = new MemoryApprovalStore();
    store.insert = async () => {
      throw new Error('disk full');
    };
    const service = new ApprovalService({ store, clock: new FakeClock() });
    const h = service.request(heldDelete());
    expect(await h.outcome).toMatchObject({ approved: false, cause: 'cancelled' });
  });

  it('cancels every waiting statement on close', async () => {
    const { service, clock } = setup();
    const h = service.request(heldDelete());
    await settle();
    service.close();
    expect(await h.outcome).toMatchObject({ approved: false, cause: 'cancelled' });
    expect(clock.pendingTimers).toBe(0);
    expect(await service.request(heldDelete()).outcome).toMatchObject({ approved: false, cause: 'cancelled' });
  });
});
