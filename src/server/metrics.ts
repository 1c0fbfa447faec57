// The gateway's Prometheus metrics (`/metrics`, text format): one Registry per Gateway, so several
// gateways in one process (tests) keep separate figures, with Node's default process metrics in it.
// Labels are bounded: connection names come from the policy, decisions and causes from fixed sets,
// identities are never labels. No statement text, no PHI.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StatementDecision } from '../audit/events.js';
import type { AuditTimings } from '../audit/log.js';
import type { UpstreamErrorKind } from './upstream.js';
import type { PoolStats } from './pool/pool.js';

/** Why an upstream connect failed: the UpstreamError kind, or `config` when the target could not be resolved. */
export type ConnectCause = UpstreamErrorKind | 'config' | 'other';


/** A session's metrics, bound to its connection: every hook on the session path is one call. */
export interface ConnectionMetrics {
  sessionStarted(): void;
  sessionEnded(reason: string): void;
  /** A statement record was written with this decision (as in the audit record's `decision`). */
  decided(decision: StatementDecision): void;
  /** Times an upstream connect: its latency on success, its cause class on failure; returns `p`. */
  upstreamConnect<T>(p: Promise<T>): Promise<T>;
  upstreamFailed(cause: ConnectCause): void;
}

/** What the gateway knows only at scrape time (read then, so the session path pays nothing for it). */
export interface MetricsSources {
  /** Connection names of the policy in force: every one gets a series, even at zero. */
  connections(): Iterable<string>;
  /** Live sessions: their connection and whether a statement of theirs waits for an approver. */
  sessions(): Iterable<{ connection: string; holding: boolean }>;
  /** Upstream connection pools: what each holds and has done. */
  pools?(): PoolStats[];
  /** With --store: evidence shipping. */
  shipping?(): { behind: number; lagSeconds: number; failing: boolean } | undefined;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Plain numbers on the hot path; they become prom-client counters only when scraped. */
class Tally {
  private readonly counts = new Map<string, number>();
  add(key: string, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }
  entries(): Iterable<[string, number]> {
    return this.counts.entries();
  }
}

class ConnectionTally implements ConnectionMetrics {
  started = 0;
  readonly ended = new Tally();
  readonly decisions = new Tally();
  readonly connectErrors = new Tally();

  constructor(private readonly connectSeconds: Histogram.Internal<'connection'>) {}

  sessionStarted(): void {
    this.started++;
  }
  sessionEnded(reason: string): void {
    this.ended.add(reason);
  }
  decided(decision: StatementDecision): void {
    this.decisions.add(decision);
  }
  upstreamConnect<T>(p: Promise<T>): Promise<T> {
    const t0 = performance.now();
    p.then(
      () => this.connectSeconds.observe((performance.now() - t0) / 1000),
      (err: unknown) => this.upstreamFailed(causeOf(err)),
    );
    return p;
  }
  upstreamFailed(cause: ConnectCause): void {
    this.connectErrors.add(cause);
  }
}

function causeOf(err: unknown): ConnectCause {
  const kind = (err as { name?: unknown; kind?: unknown } | null)?.kind;
  return (err as { name?: unknown } | null)?.name === 'UpstreamError' && typeof kind === 'string' ? (kind as UpstreamErrorKind) : 'other';
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly byConnection = new Map<string, ConnectionTally>();
  private readonly connectSeconds: Histogram<'connection'>;
  readonly audit: AuditTimings;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const tallies = this.byConnection;
    new Gauge({
      name: 'phigate_sessions_active', help: 'Client sessions open now.', labelNames: ['connection'], registers,
      collect() {
        this.reset();
        for (const c of sources.connections()) this.set({ connection: c }, 0);
        for (const s of sources.sessions()) this.inc({ connection: s.connection });
      },
    });
    new Gauge({
      name: 'phigate_approvals_held', help: 'Statements waiting for an approver now.', labelNames: ['connection'], registers,
      collect() {
        this.reset();
        for (const c of sources.connections()) this.set({ connection: c }, 0);
        for (const s of sources.sessions()) if (s.holding) this.inc({ connection: s.connection });
      },
    });
    new Counter({
      name: 'phigate_sessions_started_total', help: 'Client sessions accepted (tunnel admitted).', labelNames: ['connection'], registers,
      collect() {
        this.reset();
        for (const [c, t] of tallies) this.inc({ connection: c }, t.started);
      },
    });
    new Counter({
      name: 'phigate_sessions_ended_total', help: 'Client sessions ended, by reason.', labelNames: ['connection', 'reason'], registers,
      collect() {
        this.reset();
        for (const [c, t] of tallies) for (const [reason, n] of t.ended.entries()) this.inc({ connection: c, reason }, n);
      },
    });
    new Counter({
      name: 'phigate_statement_decisions_total',
      help: 'Statement records by decision (allow, block, error, approve = held; then approved, denied, timeout, withdrawn, cancelled).',
      labelNames: ['connection', 'decision'], registers,
      collect() {
        this.reset();
        for (const [c, t] of tallies) for (const [decision, n] of t.decisions.entries()) this.inc({ connection: c, decision }, n);
      },
    });
    new Counter({
      name: 'phigate_upstream_connect_errors_total', help: 'Failed connects to a connection\'s PostgreSQL, by cause class.',
      labelNames: ['connection', 'cause'], registers,
      collect() {
        this.reset();
        for (const [c, t] of tallies) for (const [cause, n] of t.connectErrors.entries()) this.inc({ connection: c, cause }, n);
      },
    });
    if (sources.pools) registerPoolMetrics(sources.pools, registers);
    this.connectSeconds = new Histogram({
      name: 'phigate_upstream_connect_seconds', help: 'Time to open and authenticate an upstream PostgreSQL connection.',
      labelNames: ['connection'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    });
    const append = new Histogram({
      name: 'phigate_audit_append_seconds', help: 'One audit log append (a batch of records written before what they describe goes on).',
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1], registers,
    });
    const appended = new Counter({ name: 'phigate_audit_records_total', help: 'Audit records appended by this process.', registers });
    const fsync = new Histogram({
      name: 'phigate_audit_fsync_seconds', help: 'One group-commit fsync of the audit log.',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers,
    });
    this.audit = {
      append: (seconds, records) => {
        append.observe(seconds);
        appended.inc(records);
      },
      fsync: (seconds) => fsync.observe(seconds),
    };
    if (sources.shipping) {
      const shipping = sources.shipping;
      new Gauge({
        name: 'phigate_audit_shipping_behind_records', help: 'Audit records on local disk not yet in the shared store (--store).', registers,
        collect() {
          this.set(shipping()?.behind ?? 0);
        },
      });
      new Gauge({
        name: 'phigate_audit_shipping_lag_seconds', help: 'Seconds since the shared store last held every synced local record (0 when caught up).', registers,
        collect() {
          this.set(shipping()?.lagSeconds ?? 0);
        },
      });
      new Gauge({
        name: 'phigate_audit_shipping_failing', help: '1 while the last attempt to ship evidence to the shared store failed.', registers,
        collect() {
          this.set(shipping()?.failing ? 1 : 0);
        },
      });
    }
  }

  /** The metrics of one connection (made on first use; names are bounded by the policy). */
  forConnection(name: string): ConnectionMetrics {
    let t = this.byConnection.get(name);
    if (!t) {
      t = new ConnectionTally(this.connectSeconds.labels({ connection: name }));
      this.byConnection.set(name, t);
    }
    return t;
  }

  /** The exposition text (collects gauges now). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The pools' figures, read at scrape time (the pool keeps plain numbers). */
function registerPoolMetrics(pools: () => PoolStats[], registers: Registry[]): void {
  new Gauge({
    name: 'phigate_upstream_pool_connections', help: 'Pooled upstream connections now, by state (idle, leased, opening, resetting).',
    labelNames: ['connection', 'state'], registers,
    collect() {
      this.reset();
      for (const p of pools()) {
        for (const state of ['idle', 'leased', 'opening', 'resetting'] as const) this.set({ connection: p.connection, state }, p[state]);
      }
    },
  });
  new Gauge({
    name: 'phigate_upstream_pool_size', help: 'Most upstream connections a connection\'s pool may hold (connections.NAME.pool.size).',
    labelNames: ['connection'], registers,
    collect() {
      this.reset();
      for (const p of pools()) this.set({ connection: p.connection }, p.size);
    },
  });
  const counters: Array<[string, string, keyof PoolStats]> = [
    ['phigate_upstream_pool_opened_total', 'Upstream connections the pool opened (authenticated).', 'opened'],
    ['phigate_upstream_pool_reused_total', 'Sessions served by a pooled connection an earlier session used.', 'reused'],
    ['phigate_upstream_pool_waits_total', 'Sessions that waited for a pooled connection (pool full, or one being reset).', 'waits'],
    ['phigate_upstream_pool_wait_timeouts_total', 'Sessions refused because no pooled connection came free in time.', 'waitTimeouts'],
    ['phigate_upstream_pool_resets_total', 'Resets (DISCARD ALL) of connections given back by a session.', 'resets'],
    ['phigate_upstream_pool_reset_failures_total', 'Resets that failed; the connection was closed.', 'resetFailures'],
    ['phigate_upstream_pool_closed_total', 'Pooled upstream connections closed.', 'closed'],
  ];
  for (const [name, help, field] of counters) {
    new Counter({
      name, help, labelNames: ['connection'], registers,
      collect() {
        this.reset();
        for (const p of pools()) this.inc({ connection: p.connection }, p[field] as number);
      },
    });
  }
}

/** For sessions made without a gateway's metrics: hooks that do nothing. */
export const NO_METRICS: ConnectionMetrics = {
  sessionStarted() {},
  sessionEnded() {},
  decided() {},
  upstreamConnect: (p) => p,
  upstreamFailed() {},
};
