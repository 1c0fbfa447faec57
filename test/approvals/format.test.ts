// How requests read in a terminal (table cells, countdowns) and how the live view's model follows the
// stream: snapshot, new requests, requests settled elsewhere.
import { describe, expect, it } from 'vitest';
import type { ApprovalView } from '../../src/approvals/api.js';
import { formatAge, formatTimeLeft, oneLine, requesterLabel, statusText } from '../../src/approvals/format.js';
import { renderApprovals } from '../../src/cli/commands/approvals.js';
import { initialListState, listReducer, ordered } from '../../src/ui/approvals/state.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');

function view(id: string, over: Partial<ApprovalView> = {}): ApprovalView {
  return {
    id, status: 'pending', kind: 'statement',
    requester: { name: 'alice', kind: 'agent', label: 'claude', subject: 'alice', issuer: 'https://idp.test' },
    session_id: 's1', connection: 'ehr', statement: 'DELETE FROM patients WHERE id = $1', shape: 'DELETE FROM patients WHERE id = $1', rule: 'phi-writes', reason: 'r',
    tables: ['patients'], approvers: ['privacy-officers'],
    created_at: new Date(T0 - 90_000).toISOString(), expires_at: new Date(T0 + 14 * 60_000 + 5_000).toISOString(),
    decision: null, can_decide: true, own: false, ...over,
  };
}

describe('approval formatting', () => {
  it('formats ages, countdowns, requesters and statements for one line', () => {
    expect([formatAge(5_000), formatAge(90_000), formatAge(7_200_000), formatAge(3 * 86_400_000)]).toEqual(['5s', '1m', '2h', '3d']);
    expect([formatTimeLeft(0), formatTimeLeft(999), formatTimeLeft(14 * 60_000 + 5_000), formatTimeLeft(3_900_000)]).toEqual(['expired', '1s', '14m 05s', '1h 05m']);
    expect(requesterLabel(view('a'))).toBe('alice (agent "claude")');
    expect(requesterLabel(view('a', { requester: { name: 'ci', kind: 'service', subject: 'ci', issuer: 'x' } }))).toBe('ci (service)');
    expect(oneLine('SELECT\n  1,\t\x1b[31m2', 100)).toBe('SELECT 1, [31m2');
    expect(oneLine('x'.repeat(50), 10)).toBe('xxxxxxx...');
    expect(statusText(view('a', { status: 'approved', decision: { approved: true, approver: 'bob', scope: 'session', decided_at: '' } }))).toBe('approved by bob (session)');
    expect(statusText(view('a', { can_decide: false, own: true }))).toBe('pending (yours)');
  });

  it('renders a table whose statement column fits the terminal', () => {
    const out = renderApprovals({
      server: 'http://gw', server_time: new Date(T0).toISOString(),
      approvals: [view('apr-aaaaaa', { statement: `UPDATE visits SET ${'note = $1, '.repeat(20)}x = $2` })],
    }, { width: 130 });
    const [head, row] = out.trimEnd().split('\n');
    expect(head).toMatch(/^ID +AGE +REQUESTER +CONNECTION +RULE +STATEMENT +EXPIRES IN +STATUS$/);
    expect(row).toMatch(/^apr-aaaaaa +1m +alice \(agent "claude"\) +ehr +phi-writes +UPDATE visits SET note = \$1, .*\.\.\. +14m 05s +pending$/);
    expect(row!.length).toBeLessThanOrEqual(130);
    expect(renderApprovals({ server: 'http://gw', server_time: '', approvals: [] })).toBe('No approval requests waiting for you on http://gw.\n');
    const empty = { server: 'http://gw', server_time: '', approvals: [] };
    expect(renderApprovals({ ...empty, viewer: { name: 'dan', groups: [] }, approver_groups: [] }))
      .toBe('You (dan) are not an approver on http://gw: you are in no group; its policy holds nothing for approval.\n');
    expect(renderApprovals({ ...empty, viewer: { name: 'bob', groups: ['x', 'privacy-officers'] }, approver_groups: ['privacy-officers'] }))
      .toBe('No approval requests waiting for you on http://gw.\n');
  });
});

describe('live view model', () => {
  it('follows the stream and orders by time left', () => {
    const st = new Date(T0).toISOString();
    let s = listReducer(initialListState, {
      type: 'stream', localNow: T0 - 2_000,
      msg: { type: 'snapshot', server_time: st, approvals: [view('apr-late', { expires_at: new Date(T0 + 600_000).toISOString() }), view('apr-done', { status: 'approved' })] },
    });
    expect([...s.items.keys()]).toEqual(['apr-late']);
    expect(s.skewMs).toBe(2_000);
    s = listReducer(s, { type: 'stream', localNow: T0, msg: { type: 'requested', server_time: st, approval: view('apr-soon', { expires_at: new Date(T0 + 60_000).toISOString() }) } });
    expect(ordered(s.items).map((a) => a.id)).toEqual(['apr-soon', 'apr-late']);
    s = listReducer(s, { type: 'stream', localNow: T0, msg: { type: 'expired', server_time: st, approval: view('apr-soon', { status: 'expired' }) } });
    expect(ordered(s.items).map((a) => a.id)).toEqual(['apr-late']);
    expect(s.flash).toEqual({ text: 'apr-soon timed out', tone: 'info' });
  });
});
