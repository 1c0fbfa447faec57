// Just-in-time access: identities in a connection's access_approval.groups must ask before they may
// open tunnels to it. An approved request becomes a grant that expires on time; on expiry the
// gateway ends that identity's live sessions on the connection.
import type { Identity } from '../auth/index.js';
import type { ApprovalRequester, Outcome } from '../approvals/types.js';
import type { ConnectionPolicy } from '../policy/file.js';
import { formatDuration, parseDuration } from '../policy/duration.js';

/** How long an access request waits for an approver. */
export const ACCESS_REQUEST_TIMEOUT_MS = 15 * 60_000;

export interface AccessGrant {
  id: string;
  subject: string;
  issuer: string;
  connection: string;
  approver: string;
  grantedAt: number;
  expiresAt: number;
}

export type AccessRequestState =
  | { status: 'pending'; id: string; connection: string; expiresAt: number }
  | { status: 'approved'; id: string; connection: string; grant: AccessGrant }
  | { status: 'denied' | 'timeout' | 'withdrawn' | 'cancelled'; id: string; connection: string; approver?: string; reason?: string };

export class AccessError extends Error {
  constructor(readonly code: 'bad_duration' | 'not_required' | 'not_allowed', message: string) {
    super(message);
    this.name = 'AccessError';
  }
}

const key = (subject: string, issuer: string, connection: string): string => `${issuer}\u0000${subject}\u0000${connection}`;

export class AccessGrants {
  private readonly grants = new Map<string, AccessGrant>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly requests = new Map<string, { state: AccessRequestState; waiters: ((s: AccessRequestState) => void)[]; owner: string }>();

  constructor(
    private readonly approvals: ApprovalRequester,
    private readonly onExpire: (grant: AccessGrant) => void,
    private readonly now: () => number = Date.now,
    private readonly onGrant: (grant: AccessGrant, requester: string, reason: string) => void = () => {},
  ) {}

  /** Does this identity need a grant for this connection? */
  static required(identity: Pick<Identity, 'groups'>, conn: ConnectionPolicy): boolean {
    const a = conn.accessApproval;
    return a !== undefined && a.groups.some((g) => identity.groups.includes(g));
  }

  active(identity: Pick<Identity, 'subject' | 'issuer'>, connection: string): AccessGrant | undefined {
    const g = this.grants.get(key(identity.subject, identity.issuer, connection));
    return g && g.expiresAt > this.now() ? g : undefined;
  }

  /** Starts an access request (or returns the grant already in force). */
  request(identity: Identity, conn: ConnectionPolicy, opts: { reason?: string; duration?: string; label?: string }): AccessRequestState {
    const policy = conn.accessApproval;
    if (!policy || !AccessGrants.required(identity, conn)) {
      throw new AccessError('not_required', `"${conn.name}" does not require an access request for ${identity.name}`);
    }
    const max = parseDuration(policy.maxDuration) ?? 8 * 3_600_000;
    const wanted = opts.duration === undefined ? Math.min(max, 3_600_000) : parseDuration(opts.duration);
    if (wanted === undefined) throw new AccessError('bad_duration', `--duration "${opts.duration}" is not a duration such as 30m or 2h`);
    if (wanted > max) throw new AccessError('bad_duration', `--duration ${formatDuration(wanted)} exceeds the maximum of ${policy.maxDuration} for "${conn.name}"`);
    const existing = this.active(identity, conn.name);
    if (existing) return { status: 'approved', id: existing.id, connection: conn.name, grant: existing };
    const reason = (opts.reason ?? '').slice(0, 500);
    const handle = this.approvals.request({
      kind: 'access',
      requester: { subject: identity.subject, issuer: identity.issuer, name: identity.name, groups: identity.groups, kind: opts.label ? 'agent' : identity.kind, label: opts.label },
      sessionId: '',
      connection: conn.name,
      statement: `ACCESS ${conn.name} FOR ${formatDuration(wanted)}`,
      fingerprint: '',
      rule: 'access_approval',
      reason: reason || '(no reason given)',
      tables: [],
      approvers: policy.approvers,
      timeoutMs: ACCESS_REQUEST_TIMEOUT_MS,
      accessDurationMs: wanted,
    });
    const entry = {
      state: { status: 'pending', id: handle.id, connection: conn.name, expiresAt: this.now() + ACCESS_REQUEST_TIMEOUT_MS } as AccessRequestState,
      waiters: [] as ((s: AccessRequestState) => void)[],
      owner: key(identity.subject, identity.issuer, conn.name),
    };
    this.requests.set(handle.id, entry);
    handle.outcome.then((o: Outcome) => {
      entry.state = o.approved
        ? { status: 'approved', id: handle.id, connection: conn.name, grant: this.grant(handle.id, identity, conn.name, o.approver, wanted, reason) }
        : { status: o.cause, id: handle.id, connection: conn.name, approver: o.approver, reason: o.reason };
      for (const w of entry.waiters.splice(0)) w(entry.state);
      // Settled requests stay readable for a while so a CLI that reconnects can learn the answer.
      setTimeout(() => this.requests.delete(handle.id), 10 * 60_000).unref();
    });
    return entry.state;
  }

  /** The request's state; with waitMs, waits up to that long for it to settle. Only its owner may ask. */
  async state(id: string, identity: Pick<Identity, 'subject' | 'issuer'>, waitMs = 0): Promise<AccessRequestState | undefined> {
    const entry = this.requests.get(id);
    if (!entry || !entry.owner.startsWith(`${identity.issuer}\u0000${identity.subject}\u0000`)) return undefined;
    if (entry.state.status !== 'pending' || waitMs <= 0) return entry.state;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(entry.state), waitMs);
      entry.waiters.push((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }

  private grant(id: string, identity: Pick<Identity, 'subject' | 'issuer' | 'name'>, connection: string, approver: string, durationMs: number, reason: string): AccessGrant {
    const now = this.now();
    const g: AccessGrant = { id, subject: identity.subject, issuer: identity.issuer, connection, approver, grantedAt: now, expiresAt: now + durationMs };
    const k = key(g.subject, g.issuer, connection);
    clearTimeout(this.timers.get(k));
    this.grants.set(k, g);
    const timer = setTimeout(() => {
      if (this.grants.get(k) === g) {
        this.grants.delete(k);
        this.timers.delete(k);
        this.onExpire(g);
      }
    }, durationMs);
    timer.unref();
    this.timers.set(k, timer);
    this.onGrant(g, identity.name, reason);
    return g;
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
