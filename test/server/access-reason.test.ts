// An access request's reason goes into the approval request and the evidence, whose canonical JSON has
// no form for a lone surrogate: such a reason is refused, and the 500-character cut never leaves half
// of a surrogate pair behind.
import { describe, expect, it } from 'vitest';
import { ApprovalService } from '../../src/approvals/service.js';
import { AccessError, AccessGrants } from '../../src/server/access-grants.js';
import type { ConnectionPolicy } from '../../src/policy/file.js';
import { canonicalJson } from '../../src/audit/canonical.js';
import { FakeClock, settle, who } from '../approvals/support.js';

const conn: ConnectionPolicy = {
  name: 'ehr', type: 'postgres', upstream: 'postgres://svc@db/ehr', tls: 'disable', allowGroups: ['ai-agents'],
  accessApproval: { groups: ['ai-agents'], approvers: ['privacy-officers'], maxDuration: '8h' },
};
const agent = who('claude', ['ai-agents']);

function setup(): { approvals: ApprovalService; grants: AccessGrants } {
  const approvals = new ApprovalService({ clock: new FakeClock() });
  return { approvals, grants: new AccessGrants(approvals, () => {}) };
}

describe('access request reasons', () => {
  it('a reason with a lone surrogate is refused with bad_reason', async () => {
    const { grants } = setup();
    const err = await grants.request(agent, conn, { reason: 'on call \uD800' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(AccessError);
    expect(err).toMatchObject({ code: 'bad_reason' });
  });

  it('a long reason is cut at 500 UTF-16 units without splitting a surrogate pair', async () => {
    const { approvals, grants } = setup();
    const reason = `${'x'.repeat(499)}\u{1FA7A} and more`;
    await grants.request(agent, conn, { reason });
    await settle();
    const [r] = await approvals.list(who('pat', ['privacy-officers']));
    expect(r!.input.reason).toBe('x'.repeat(499));
    expect(() => canonicalJson(r!.input)).not.toThrow();
  });
});
