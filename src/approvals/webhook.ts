// Tells an outside receiver (a chat channel, a ticketing bridge) about approval requests and their
// outcome: a JSON POST per event, with a Slack-compatible `text` when asked. Delivery is fire and
// forget with a bounded timeout and a few retries: a slow or broken receiver never holds a statement.
import type { Logger } from '../common/log.js';
import type { ApprovalEvent, ApprovalRecord } from './store.js';
import type { ApprovalScope } from './types.js';
import { scopeNotice } from './format.js';
import { showLabel } from '../tunnel/label.js';

export interface WebhookConfig {
  url: string;
  format: 'json' | 'slack';
}

export interface WebhookOptions extends WebhookConfig {
  log: Logger;
  /** Per attempt. */
  timeoutMs?: number;
  /** Attempts after the first one. */
  retries?: number;
  /** First retry delay; doubles each time. */
  backoffMs?: number;
  /** Deliveries in flight or waiting to retry beyond this are dropped (and logged). */
  maxPending?: number;
  fetch?: typeof fetch;
}

/** The body POSTed for each event. Everything in it is already free of PHI: the statement is redacted. */
export interface WebhookPayload {
  event: 'requested' | 'decided';
  id: string;
  requester: { name: string; kind: string; label?: string };
  connection: string;
  statement: string;
  rule: string;
  tables: string[];
  approvers: string[];
  expires_at: string;
  /** On `decided`: how the request ended. */
  decision?: 'approved' | 'denied' | 'timeout' | 'withdrawn';
  approver?: string;
  reason?: string;
  scope?: ApprovalScope;
  /** Slack format only. */
  text?: string;
}

export class ApprovalWebhook {
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxPending: number;
  private readonly fetch: typeof fetch;
  /** Only the receiver's origin is ever logged: webhook paths often embed a secret (Slack does). */
  private readonly where: string;
  private pending = 0;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly aborts = new Set<AbortController>();

  constructor(private readonly opts: WebhookOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.retries = opts.retries ?? 3;
    this.backoffMs = opts.backoffMs ?? 1_000;
    this.maxPending = opts.maxPending ?? 1_000;
    this.fetch = opts.fetch ?? fetch;
    this.where = safeOrigin(opts.url);
  }

  /** Queues the event's delivery and returns at once. */
  notify(event: ApprovalEvent): void {
    if (this.closed) return;
    if (this.pending >= this.maxPending) {
      this.opts.log.warn('approval webhook backlog full; notification dropped', { approval: event.approval.id, event: event.type, receiver: this.where });
      return;
    }
    const payload = webhookPayload(event, this.opts.format);
    this.pending++;
    // setImmediate: not even the JSON encoding runs on the caller's turn.
    setImmediate(() => {
      this.deliver(payload, 0).finally(() => this.pending--);
    });
  }

  /** Stops retries and aborts deliveries in flight (server shutdown, webhook removed from policy). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const a of this.aborts) a.abort();
  }

  private async deliver(payload: WebhookPayload, attempt: number): Promise<void> {
    if (this.closed) return;
    const body = JSON.stringify(payload);
    const abort = new AbortController();
    this.aborts.add(abort);
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    timer.unref();
    let problem: string;
    let retryable = true;
    try {
      const res = await this.fetch(this.opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'phigate-approvals' },
        body,
        signal: abort.signal,
      });
      // The body is not interesting, but it must be consumed for the connection to be reused.
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        if (attempt > 0) this.opts.log.info('approval webhook delivered after retry', { approval: payload.id, event: payload.event, attempts: attempt + 1 });
        return;
      }
      problem = `HTTP ${res.status}`;
      // A 4xx other than 408/429 will not get better by asking again.
      retryable = res.status >= 500 || res.status === 408 || res.status === 429;
    } catch (err) {
      problem = abort.signal.aborted ? `no answer within ${this.timeoutMs} ms` : errorCode(err);
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
    }
    if (this.closed) return;
    if (!retryable || attempt >= this.retries) {
      this.opts.log.warn('approval webhook failed', {
        approval: payload.id, event: payload.event, receiver: this.where, error: problem, attempts: attempt + 1,
      });
      return;
    }
    const delay = this.backoffMs * 2 ** attempt;
    this.opts.log.debug('approval webhook retrying', { approval: payload.id, event: payload.event, error: problem, delay_ms: delay });
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, delay);
      t.unref();
      this.timers.add(t);
    });
    return this.deliver(payload, attempt + 1);
  }
}

export function webhookPayload(event: ApprovalEvent, format: 'json' | 'slack'): WebhookPayload {
  const r = event.approval;
  const i = r.input;
  const p: WebhookPayload = {
    event: event.type === 'requested' ? 'requested' : 'decided',
    id: r.id,
    requester: { name: i.requester.name, kind: i.requester.kind, ...(i.requester.label ? { label: i.requester.label } : {}) },
    connection: i.connection,
    statement: i.statement,
    rule: i.rule,
    tables: [...i.tables],
    approvers: [...i.approvers],
    expires_at: r.expiresAt,
  };
  const s = r.settlement;
  if (p.event === 'decided' && s) {
    p.decision = s.outcome.approved ? 'approved' : s.outcome.cause === 'denied' ? 'denied' : s.outcome.cause === 'withdrawn' ? 'withdrawn' : 'timeout';
    if (s.approver) p.approver = s.approver.name;
    // A withdrawal's reason is the gateway's own wording; an approver's is what they typed.
    if (s.outcome.reason) p.reason = s.outcome.reason;
    if (s.scope) p.scope = s.scope;
  }
  if (format === 'slack') p.text = slackText(r, p);
  return p;
}

/** Who asked, as people say it: `alice (agent claude)`. */
function requesterText(r: ApprovalRecord): string {
  const q = r.input.requester;
  if (q.label) return `${q.name} (${q.kind === 'human' ? '' : `${q.kind} `}${showLabel(q.label)})`;
  return q.kind === 'human' ? q.name : `${q.name} (${q.kind})`;
}

function slackText(r: ApprovalRecord, p: WebhookPayload): string {
  const who = esc(requesterText(r));
  const stmt = codeSpan(r.input.statement);
  const where = `on ${esc(r.input.connection)} (rule ${esc(r.input.rule)})`;
  const reason = p.reason ? `: ${esc(p.reason)}` : '';
  switch (p.decision) {
    case undefined:
      return `:hourglass: ${who} wants to run ${stmt} ${where}. Approve: phigate approve ${r.id}`;
    case 'approved':
      return `:white_check_mark: ${esc(p.approver ?? 'someone')} approved ${r.id}${scopeNotice(p.scope)}: ${who}, ${stmt} ${where}${reason}`;
    case 'denied':
      return `:no_entry: ${esc(p.approver ?? 'someone')} denied ${r.id}: ${who}, ${stmt} ${where}${reason}`;
    case 'timeout':
      return `:alarm_clock: ${r.id} timed out with no decision: ${who}, ${stmt} ${where}`;
    case 'withdrawn':
      return `:leftwards_arrow_with_hook: ${who} withdrew ${r.id} ${where}`;
  }
}

/** Slack's mrkdwn control characters. */
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An inline code span that a backtick or newline in the statement cannot break out of. */
function codeSpan(statement: string): string {
  const flat = statement.replace(/\s+/g, ' ').trim();
  const short = flat.length > 300 ? `${flat.slice(0, 297)}...` : flat;
  return `\`${esc(short.replace(/`/g, "'"))}\``;
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}

function errorCode(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string; message?: string }; message?: string };
  return e.cause?.code ?? e.code ?? e.cause?.message ?? e.message ?? 'error';
}
