// The approval service: holds each request a session makes until an eligible person decides it, the
// rule's timeout runs out or the requester withdraws; enforces separation of duties; tells live
// subscribers (approver terminals, the webhook) about every change.
import { PhigateError } from '../common/errors.js';
import { randomInt } from 'node:crypto';
import { personOf, samePerson, type Identity } from '../auth/index.js';
import { DEFAULT_ADMIN_GROUPS, DEFAULT_AUDITOR_GROUPS } from '../policy/file.js';
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import {
  MemoryApprovalStore, type ApprovalChange, type ApprovalEvent, type ApprovalEventType, type ApprovalListener, type ApprovalRecord, type ApprovalStatus,
  type ApprovalStore, type Settlement,
} from './store.js';
import type {
  ApprovalHandle, ApprovalRequester, ApprovalRequestInput, ApprovalScope, Outcome, RequesterIdentity,
} from './types.js';
import { ApprovalWebhook, type WebhookConfig } from './webhook.js';

export type { ApprovalEvent, ApprovalEventType, ApprovalListener, ApprovalRecord, ApprovalStatus, ApprovalStore } from './store.js';


export type ApprovalErrorCode = 'not_found' | 'already_decided' | 'not_an_approver' | 'self_approval' | 'unowned_service' | 'reason_required';

/** What the policy says about deciding (policy `approvals`); the defaults are the strict ones. */
export interface ApprovalRules {
  /** Approvals and denials need a non-empty reason. */
  reasonRequired: boolean;
  /** A service identity that stands for no person may decide ('allow') or not ('refuse'). */
  unownedServiceApprovers: 'refuse' | 'allow';
  /**
   * Groups that see every request (read-only unless they are also approvers of it): the policy's
   * admin and auditor groups (identity.admin_groups, auditor_groups).
   */
  oversightGroups: readonly string[];
}

export const DEFAULT_APPROVAL_RULES: ApprovalRules = {
  reasonRequired: true, unownedServiceApprovers: 'refuse', oversightGroups: [...DEFAULT_ADMIN_GROUPS, ...DEFAULT_AUDITOR_GROUPS],
};

/** Why a decision (or a look at a request) was refused, in one line a CLI can print as is. */
export class ApprovalError extends PhigateError {
  override readonly name = 'ApprovalError';
  constructor(
    override readonly code: ApprovalErrorCode,
    message: string,
    /** The request as it is now, when it exists and the caller may see it. */
    readonly approval?: ApprovalRecord,
  ) {
    super(message, code);
  }
}


export interface Decision {
  approve: boolean;
  reason?: string;
  /** 'session': release this statement text for the rest of the requester's session. */
  scope?: ApprovalScope;
}

/** Time and timers, injectable so tests run timeouts on a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    // A pending approval must not keep a stopping server alive.
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface ApprovalServiceOptions {
  store?: ApprovalStore;
  clock?: Clock;
  log?: Logger;
  webhook?: WebhookConfig;
  /** Replaces the webhook built from `webhook` (tests). */
  webhookNotifier?: { notify(event: ApprovalEvent): void; close(): void };
  /** How many settled requests `--all` can still show (memory store only). */
  keepSettled?: number;
  newId?: () => string;
  /** Shared stores: how often to expire requests whose replica went away (default 30 s). */
  sweepIntervalMs?: number;
  /** The policy's rules for deciding, read at each decision (the policy may change). */
  rules?: () => ApprovalRules;
}

/** Requests waiting on this replica: what to resolve and which timer to stop. */
interface Waiter {
  resolve(outcome: Outcome): void;
  timer: unknown;
  /** Settles once the request is stored, so an early timeout or withdrawal is not lost. */
  stored: Promise<void>;
}

/** Node's timers overflow past 2^31-1 ms and fire at once; longer timeouts are clamped to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const ID_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789'; // no l/1/o/0: ids are read aloud and typed

export function newApprovalId(): string {
  let s = 'apr-';
  for (let i = 0; i < 6; i++) s += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return s;
}

export class ApprovalService implements ApprovalRequester {
  private readonly store: ApprovalStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly newId: () => string;
  private readonly rules: () => ApprovalRules;
  private readonly waiters = new Map<string, Waiter>();
  private readonly listeners = new Set<ApprovalListener>();
  private readonly resyncListeners = new Set<() => void>();
  private webhook?: { notify(event: ApprovalEvent): void; close(): void };
  private webhookConfig?: WebhookConfig;
  private closed = false;
  private unwatch?: () => void;
  private sweepTimer?: unknown;

  constructor(opts: ApprovalServiceOptions = {}) {
    this.store = opts.store ?? new MemoryApprovalStore(opts.keepSettled);
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silentLogger;
    this.newId = opts.newId ?? newApprovalId;
    this.rules = opts.rules ?? (() => DEFAULT_APPROVAL_RULES);
    if (opts.webhookNotifier) this.webhook = opts.webhookNotifier;
    else this.setWebhook(opts.webhook);
    this.unwatch = this.store.watch?.({
      change: (c) => void this.onRemoteChange(c).catch((err: Error) => this.log.warn('approval change not applied', { approval: c.id, error: err.message })),
      resync: () => void this.resync(),
    });
    if (this.store.shared) this.scheduleSweep(opts.sweepIntervalMs ?? 30_000);
  }

  /**
   * Applies a (re)loaded policy's `approvals.webhook`; undefined turns notifications off. The same
   * receiver keeps its deliveries in flight; a changed one gets only new events.
   */
  setWebhook(config: WebhookConfig | undefined): void {
    const same = config && this.webhookConfig && config.url === this.webhookConfig.url && config.format === this.webhookConfig.format;
    if (same || (!config && !this.webhook)) return;
    this.webhook?.close();
    this.webhookConfig = config ? { url: config.url, format: config.format } : undefined;
    this.webhook = config ? new ApprovalWebhook({ ...config, log: this.log }) : undefined;
  }

  request(input: ApprovalRequestInput): ApprovalHandle {
    let id = this.newId();
    for (let i = 0; this.waiters.has(id) && i < 10; i++) id = this.newId();
    const now = this.clock.now();
    const timeoutMs = Math.max(0, Math.min(input.timeoutMs, MAX_TIMER_MS));
    const record: ApprovalRecord = {
      id,
      input: { ...input, requester: { ...input.requester }, tables: [...input.tables], approvers: [...input.approvers] },
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + timeoutMs).toISOString(),
      status: 'pending',
    };
    let resolveOutcome!: (o: Outcome) => void;
    const outcome = new Promise<Outcome>((resolve) => (resolveOutcome = resolve));
    const handle: ApprovalHandle = {
      id,
      outcome,
      withdraw: (why: string) => this.settleSafely(id, { approved: false, cause: 'withdrawn', reason: why }, 'withdrawn'),
    };
    if (this.closed) {
      resolveOutcome({ approved: false, cause: 'cancelled', reason: 'the approval service is shutting down' });
      return handle;
    }
    const stored = this.store.insert(record);
    const waiter: Waiter = {
      resolve: resolveOutcome,
      timer: this.clock.setTimeout(() => this.settleSafely(id, { approved: false, cause: 'timeout' }, 'expired'), timeoutMs),
      stored: stored.catch(() => {}),
    };
    this.waiters.set(id, waiter);
    stored.then(
      () => {
        this.log.info('approval requested', {
          approval: id, requester: input.requester.name, connection: input.connection, rule: input.rule, session: input.sessionId,
        });
        this.emit({ type: 'requested', approval: record });
      },
      (err: Error) => {
        // Nobody could ever decide a request that was not stored: refuse the statement now (fail closed).
        this.log.error('approval request could not be stored', { approval: id, error: err.message });
        this.clock.clearTimeout(waiter.timer);
        this.waiters.delete(id);
        resolveOutcome({ approved: false, cause: 'cancelled', reason: 'the approval request could not be stored' });
      },
    );
    return handle;
  }

  /** Approves or denies `id` as `approver`; throws ApprovalError when they may not or it is too late. */
  async decide(id: string, approver: Identity, decision: Decision): Promise<ApprovalRecord> {
    const record = await this.store.get(id);
    if (!record) throw notFound(id);
    if (isRequester(record.input.requester, approver)) {
      throw new ApprovalError('self_approval',
        `${approver.name} cannot decide ${id}: it is their own request (separation of duties)`, record);
    }
    if (!isEligibleApprover(record, approver)) {
      throw new ApprovalError('not_an_approver',
        `${id} needs an approver from ${record.input.approvers.join(', ')}; ${approver.name} is in ${approver.groups.join(', ') || 'no group'}`,
        this.maySee(record, approver) ? record : undefined);
    }
    const rules = this.rules();
    if (!ownedEnough(approver, rules)) {
      throw new ApprovalError('unowned_service',
        `${approver.name} is a service identity that stands for no person, so it cannot decide ${id}: nobody could tell whether it approves its own owner's request. ` +
        'Decide as yourself (`phigate login`), or have the operator name its owner (identity.issuers[].service_owners or owner_claim)', record);
    }
    if (record.status !== 'pending') throw alreadySettled(record);
    const scope: ApprovalScope = decision.scope ?? 'once';
    const reason = decision.reason?.trim() || undefined;
    if (!reason && rules.reasonRequired) {
      throw new ApprovalError('reason_required', `a reason is required to ${decision.approve ? 'approve' : 'deny'} ${id}; give one with --reason TEXT`, record);
    }
    const outcome: Outcome = decision.approve
      ? { approved: true, approver: approver.name, scope, ...(reason ? { reason } : {}) }
      : { approved: false, approver: approver.name, cause: 'denied', ...(reason ? { reason } : {}) };
    const settled = await this.finish(id, outcome, decision.approve ? 'approved' : 'denied', {
      approver: { name: approver.name, subject: approver.subject, issuer: approver.issuer },
      ...(decision.approve ? { scope } : {}),
    });
    if (!settled) {
      // Someone else (or the timeout) got there between our read and our write.
      const now = await this.store.get(id);
      throw now ? alreadySettled(now) : notFound(id);
    }
    return settled;
  }

  /** May `who` approve or deny this request right now, under the policy's rules? */
  mayDecide(record: ApprovalRecord, who: Identity): boolean {
    return canDecide(record, who) && ownedEnough(who, this.rules());
  }

  /** May `who` see this request, with the policy's oversight groups as they are now? */
  maySee(record: ApprovalRecord, who: Identity): boolean {
    return canSee(record, who, this.rules().oversightGroups);
  }

  /** One request, if `viewer` may see it. */
  async get(id: string, viewer: Identity): Promise<ApprovalRecord> {
    const record = await this.store.get(id);
    if (!record) throw notFound(id);
    if (!this.maySee(record, viewer)) {
      throw new ApprovalError('not_an_approver', `${id} is not yours to see: it needs an approver from ${record.input.approvers.join(', ')}`);
    }
    return record;
  }

  /**
   * What `viewer` may see: pending requests they may decide or that are their own, everything for the
   * oversight groups; with `all`, recently settled ones too. Pending first, oldest first.
   */
  async list(viewer: Identity, opts: { all?: boolean } = {}): Promise<ApprovalRecord[]> {
    const records = await this.store.list({ includeSettled: opts.all === true });
    const oversight = this.rules().oversightGroups;
    return records.filter((r) => canSee(r, viewer, oversight));
  }

  /** Several replicas share the store: grants and access requests must be read from it. */
  get shared(): boolean {
    return this.store.shared === true;
  }

  /** The request as stored, without a viewer check: for callers that check ownership themselves. */
  lookup(id: string): Promise<ApprovalRecord | undefined> {
    return this.store.get(id);
  }

  /** Shared stores: the newest approved access request of this identity for this connection. */
  async latestAccessApproval(subject: string, issuer: string, connection: string): Promise<ApprovalRecord | undefined> {
    return this.store.latestAccess?.(subject, issuer, connection);
  }

  /** Live updates: every request, decision, expiry and withdrawal. Returns the unsubscribe function. */
  subscribe(listener: ApprovalListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /**
   * Shared stores: called after changes may have been missed (the store's notifications were cut);
   * live views should start over from a fresh list. Returns the unsubscribe function.
   */
  onResync(listener: () => void): () => void {
    this.resyncListeners.add(listener);
    return () => void this.resyncListeners.delete(listener);
  }

  /**
   * Shutdown: every waiting statement is refused (cancelled), timers and the webhook stop. In a
   * shared store this replica's requests are withdrawn, so approvers elsewhere stop seeing them.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.unwatch?.();
    this.clock.clearTimeout(this.sweepTimer);
    const mine = [...this.waiters.keys()];
    for (const [id, w] of this.waiters) {
      this.clock.clearTimeout(w.timer);
      w.resolve({ approved: false, cause: 'cancelled', reason: 'the gateway is shutting down' });
      this.waiters.delete(id);
    }
    this.listeners.clear();
    if (this.store.shared) {
      const reason = 'the gateway holding the statement shut down';
      await Promise.all(mine.map((id) => this.finish(id, { approved: false, cause: 'withdrawn', reason }, 'withdrawn').catch(() => undefined)));
    }
    this.webhook?.close();
  }

  /** Settles `id` once, whoever calls first; resolves the waiting session and tells subscribers. */
  private async finish(
    id: string, outcome: Outcome, status: ApprovalRecord['status'], extra: Omit<Settlement, 'outcome' | 'at'> = {},
  ): Promise<ApprovalRecord | undefined> {
    await this.waiters.get(id)?.stored;
    const current = await this.store.get(id);
    if (!current) return undefined;
    if (current.status !== 'pending') {
      // Settled elsewhere and the notification missed (or not yet here): answer the statement anyway.
      if (current.settlement) this.release(id, current.settlement.outcome);
      return undefined;
    }
    const settled: ApprovalRecord = {
      ...current,
      status,
      settlement: { outcome, at: new Date(this.clock.now()).toISOString(), ...extra },
    };
    if (!(await this.store.settle(id, settled))) {
      const now = await this.store.get(id);
      if (now?.settlement) this.release(id, now.settlement.outcome);
      return undefined;
    }
    this.release(id, outcome);
    this.log.info(`approval ${status}`, {
      approval: id, approver: extra.approver?.name, scope: extra.scope, connection: current.input.connection, rule: current.input.rule,
    });
    this.emit({ type: eventType(status), approval: settled });
    return settled;
  }

  /**
   * A timeout or withdrawal: settle it in the store; if the store cannot be written, the statement
   * is refused all the same (fail closed) and the request times out in the store later.
   */
  private settleSafely(id: string, outcome: Outcome, status: ApprovalStatus): void {
    this.finish(id, outcome, status).catch((err: Error) => {
      this.log.error('approval could not be settled in the store; refusing the statement', { approval: id, status, error: err.message });
      this.release(id, outcome);
    });
  }

  /** Answers the statement waiting on this replica for `id`, if any. */
  private release(id: string, outcome: Outcome): void {
    const waiter = this.waiters.get(id);
    if (!waiter) return;
    this.clock.clearTimeout(waiter.timer);
    this.waiters.delete(id);
    waiter.resolve(outcome);
  }

  /**
   * Another replica changed `id`: answer our statement if it was ours, and tell our subscribers.
   * The webhook is not told: the replica that made the change did that.
   */
  private async onRemoteChange(change: ApprovalChange): Promise<void> {
    if (this.closed) return;
    const record = await this.store.get(change.id);
    // A request settled before we read it: its own notification follows and tells the rest.
    if (!record || (change.status === 'pending') !== (record.status === 'pending')) return;
    if (record.settlement) this.release(record.id, record.settlement.outcome);
    this.emit({ type: eventType(record.status), approval: record }, { webhook: false });
  }

  /** After missed notifications: statements waiting here learn of decisions taken meanwhile. */
  private async resync(): Promise<void> {
    for (const l of [...this.resyncListeners]) l();
    for (const id of [...this.waiters.keys()]) {
      const record = await this.store.get(id).catch(() => undefined);
      if (record?.settlement) {
        this.release(id, record.settlement.outcome);
        this.emit({ type: eventType(record.status), approval: record }, { webhook: false });
      }
    }
  }

  /**
   * Requests whose replica went away (crashed without withdrawing them) would stay pending forever
   * in a shared store: expire them a little after their timeout, from whichever replica looks first.
   */
  async sweep(): Promise<number> {
    const grace = 5_000;
    const now = this.clock.now();
    let expired = 0;
    for (const r of await this.store.list({ includeSettled: false })) {
      if (this.waiters.has(r.id) || Date.parse(r.expiresAt) + grace > now) continue;
      if (await this.finish(r.id, { approved: false, cause: 'timeout' }, 'expired')) expired++;
    }
    await this.store.prune?.();
    return expired;
  }

  private scheduleSweep(everyMs: number): void {
    if (this.closed) return;
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweep().then(
        (n) => n > 0 && this.log.info('expired approval requests left by another replica', { count: n }),
        (err: Error) => this.log.warn('approval sweep failed', { error: err.message }),
      ).finally(() => this.scheduleSweep(everyMs));
    }, everyMs);
  }

  private emit(event: ApprovalEvent, opts: { webhook: boolean } = { webhook: true }): void {
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch (err) {
        this.log.warn('approval listener failed', { event: event.type, approval: event.approval.id, error: (err as Error).message });
      }
    }
    if (opts.webhook) this.webhook?.notify(event);
  }
}

function eventType(status: ApprovalStatus): ApprovalEventType {
  if (status === 'pending') return 'requested';
  return status === 'approved' || status === 'denied' ? 'decided' : status === 'expired' ? 'expired' : 'withdrawn';
}

/** A service identity decides only when it stands for a person, unless the policy allows otherwise. */
function ownedEnough(who: Identity, rules: ApprovalRules): boolean {
  return who.kind !== 'service' || personOf(who) !== undefined || rules.unownedServiceApprovers === 'allow';
}

/**
 * Whether `who` is the requester's person: the same token subject at the same issuer, the same
 * person (a human's subject, or the owner a service stands for: `dev-bob` is bob), or the same
 * identity name (a second login at another issuer). Session labels are never compared: a label is
 * whatever the requester typed. Fail closed: a look-alike person is refused, not allowed.
 */
export function isRequester(requester: RequesterIdentity, who: Identity): boolean {
  if (requester.subject === who.subject && requester.issuer === who.issuer) return true;
  const theirs = requester.person ?? (requester.kind === 'service' ? undefined : requester.subject);
  if (samePerson(theirs, personOf(who))) return true;
  return samePerson(requester.name, who.name);
}

export function isEligibleApprover(record: ApprovalRecord, who: Identity): boolean {
  return who.groups.some((g) => record.input.approvers.includes(g));
}

export function isOverseer(who: Identity, oversightGroups: readonly string[]): boolean {
  return who.groups.some((g) => oversightGroups.includes(g));
}

/** May `who` approve or deny this request right now? */
export function canDecide(record: ApprovalRecord, who: Identity): boolean {
  return record.status === 'pending' && isEligibleApprover(record, who) && !isRequester(record.input.requester, who);
}

/** May `who` see this request: an approver of it, its requester, the one who decided it, or oversight. */
export function canSee(record: ApprovalRecord, who: Identity, oversightGroups: readonly string[]): boolean {
  if (isEligibleApprover(record, who) || isOverseer(who, oversightGroups)) return true;
  if (isRequester(record.input.requester, who)) return true;
  const a = record.settlement?.approver;
  return a !== undefined && a.subject === who.subject && a.issuer === who.issuer;
}

function notFound(id: string): ApprovalError {
  return new ApprovalError('not_found', `no approval request ${id} (it never existed, or was settled long ago)`);
}

function alreadySettled(r: ApprovalRecord): ApprovalError {
  const s = r.settlement;
  const by = s?.approver ? ` by ${s.approver.name}` : '';
  const what: Record<ApprovalRecord['status'], string> = {
    pending: 'is still pending',
    approved: `was already approved${by}`,
    denied: `was already denied${by}`,
    expired: 'timed out',
    withdrawn: 'was withdrawn by the requester',
  };
  return new ApprovalError('already_decided', `${r.id} ${what[r.status]}${s ? ` at ${s.at}` : ''}`, r);
}
