// Just-in-time access: identities in a connection's access_approval.groups must ask before they may
// open tunnels to it. An approved request becomes a grant that expires on time; on expiry the
// gateway ends that identity's live sessions on the connection. With a shared approval store
// (several replicas) a grant is derived from the approved request in the store, so a tunnel may
// land on any replica, and each replica ends its own sessions when the grant runs out.
import { PhigateError } from '../common/errors.js';
import type { Identity } from '../auth/index.js';
import type { ApprovalRecord } from '../approvals/store.js';
import type { ApprovalRequester, Outcome } from '../approvals/types.js';
import { requesterOf } from '../approvals/requester.js';
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

export class AccessError extends PhigateError {
  constructor(override readonly code: 'bad_duration' | 'bad_reason' | 'not_required' | 'not_allowed', message: string) {
    super(message, code);
    this.name = 'AccessError';
  }
}

const key = (subject: string, issuer: string, connection: string): string => `${issuer}\u0000${subject}\u0000${connection}`;

/** What a shared approval store lets every replica read (ApprovalService on a shared store). */
export interface SharedAccessLookup {
  latestAccessApproval(subject: string, issuer: string, connection: string): Promise<ApprovalRecord | undefined>;
  lookup(id: string): Promise<ApprovalRecord | undefined>;
}

/** An approved access request, as the grant it stands for (undefined for anything else). */
export function grantOf(r: ApprovalRecord): AccessGrant | undefined {
  const s = r.settlement;
  if (r.input.kind !== 'access' || r.status !== 'approved' || !s || !s.outcome.approved) return undefined;
  const grantedAt = Date.parse(s.at);
  return {
    id: r.id, subject: r.input.requester.subject, issuer: r.input.requester.issuer, connection: r.input.connection,
    approver: s.outcome.approver, grantedAt, expiresAt: grantedAt + (r.input.accessDurationMs ?? 0),
  };
}

/** How often a replica re-reads a request another replica holds while a CLI waits on it. */
const SHARED_POLL_MS = 500;

export class AccessGrants {
  private readonly grants = new Map<string, AccessGrant>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly requests = new Map<string, { state: AccessRequestState; waiters: ((s: AccessRequestState) => void)[]; owner: string }>();

  constructor(
    private readonly approvals: ApprovalRequester,
    private readonly onExpire: (grant: AccessGrant) => void,
    private readonly now: () => number = Date.now,
    private readonly onGrant: (grant: AccessGrant, requester: string, reason: string) => void = () => {},
    /** Set when the approval store is shared by several replicas. */
    private readonly shared?: SharedAccessLookup,
  ) {}

  /** Does this identity need a grant for this connection? */
  static required(identity: Pick<Identity, 'groups'>, conn: ConnectionPolicy): boolean {
    const a = conn.accessApproval;
    return a !== undefined && a.groups.some((g) => identity.groups.includes(g));
  }

  /** The grant in force for this identity on this connection, from any replica when the store is shared. */
  async active(identity: Pick<Identity, 'subject' | 'issuer'>, connection: string): Promise<AccessGrant | undefined> {
    const g = this.grants.get(key(identity.subject, identity.issuer, connection));
    if (g && g.expiresAt > this.now()) return g;
    if (!this.shared) return undefined;
    const r = await this.shared.latestAccessApproval(identity.subject, identity.issuer, connection);
    const found = r && grantOf(r);
    if (!found || found.expiresAt <= this.now()) return undefined;
    // Granted through another replica: this one ends its own sessions when it runs out.
    this.track(found);
    return found;
  }

  /** Starts an access request (or returns the grant already in force). */
  async request(identity: Identity, conn: ConnectionPolicy, opts: { reason?: string; duration?: string; label?: string }): Promise<AccessRequestState> {
    const policy = conn.accessApproval;
    if (!policy || !AccessGrants.required(identity, conn)) {
      throw new AccessError('not_required', `"${conn.name}" does not require an access request for ${identity.name}`);
    }
    const max = parseDuration(policy.maxDuration) ?? 8 * 3_600_000;
    const wanted = opts.duration === undefined ? Math.min(max, 3_600_000) : parseDuration(opts.duration);
    if (wanted === undefined) throw new AccessError('bad_duration', `--duration "${opts.duration}" is not a duration such as 30m or 2h`);
    if (wanted > max) throw new AccessError('bad_duration', `--duration ${formatDuration(wanted)} exceeds the maximum of ${policy.maxDuration} for "${conn.name}"`);
    const existing = await this.active(identity, conn.name);
    if (existing) return { status: 'approved', id: existing.id, connection: conn.name, grant: existing };
    // The reason goes into the evidence, whose canonical JSON has no form for a lone surrogate.
    if (opts.reason !== undefined && !opts.reason.isWellFormed()) {
      throw new AccessError('bad_reason', 'the reason is not valid Unicode text (it holds a lone UTF-16 surrogate)');
    }
    let reason = (opts.reason ?? '').slice(0, 500);
    // Never keep half of a surrogate pair that the cut went through.
    if (!reason.isWellFormed()) reason = reason.slice(0, -1);
    const handle = this.approvals.request({
      kind: 'access',
      requester: requesterOf(identity, opts.label),
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
    if (!entry && this.shared) return this.sharedState(id, identity, waitMs);
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

  /**
   * A request another replica took (a CLI's long poll may land anywhere): read from the shared
   * store, re-read every SHARED_POLL_MS while it is pending and the caller waits.
   */
  private async sharedState(id: string, identity: Pick<Identity, 'subject' | 'issuer'>, waitMs: number): Promise<AccessRequestState | undefined> {
    const until = this.now() + waitMs;
    for (;;) {
      const r = await this.shared!.lookup(id);
      if (!r || r.input.kind !== 'access' || r.input.requester.subject !== identity.subject || r.input.requester.issuer !== identity.issuer) return undefined;
      const connection = r.input.connection;
      const o = r.settlement?.outcome;
      if (r.status !== 'pending' && o) {
        if (!o.approved) return { status: o.cause, id, connection, approver: o.approver, reason: o.reason };
        const g = grantOf(r)!;
        if (g.expiresAt > this.now()) this.track(g);
        return { status: 'approved', id, connection, grant: g };
      }
      if (this.now() + SHARED_POLL_MS > until) return { status: 'pending', id, connection, expiresAt: Date.parse(r.expiresAt) };
      await new Promise((res) => setTimeout(res, SHARED_POLL_MS).unref());
    }
  }

  private grant(id: string, identity: Pick<Identity, 'subject' | 'issuer' | 'name'>, connection: string, approver: string, durationMs: number, reason: string): AccessGrant {
    const now = this.now();
    const g: AccessGrant = { id, subject: identity.subject, issuer: identity.issuer, connection, approver, grantedAt: now, expiresAt: now + durationMs };
    this.track(g);
    this.onGrant(g, identity.name, reason);
    return g;
  }

  /** Keeps `g` as the grant in force for its identity and connection, and ends it on time. */
  private track(g: AccessGrant): void {
    const k = key(g.subject, g.issuer, g.connection);
    if (this.grants.get(k)?.id === g.id) return;
    clearTimeout(this.timers.get(k));
    this.grants.set(k, g);
    const timer = setTimeout(() => void this.expire(k, g), Math.max(0, g.expiresAt - this.now()));
    timer.unref();
    this.timers.set(k, timer);
  }

  private async expire(k: string, g: AccessGrant): Promise<void> {
    if (this.grants.get(k) !== g) return;
    if (this.shared) {
      // Renewed through another replica meanwhile: keep the sessions, follow the new grant.
      const next = await this.active(g, g.connection).catch(() => undefined);
      if (next && next.id !== g.id) return;
      if (this.grants.get(k) !== g) return;
    }
    this.grants.delete(k);
    this.timers.delete(k);
    this.onExpire(g);
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
