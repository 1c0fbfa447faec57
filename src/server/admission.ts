// Session admission: how many sessions each identity and each connection holds on this replica, and
// how many each identity is opening at once. A session over a limit is refused with a message that
// names the limit, the count and the policy key; one over the connects-in-flight limit waits its turn
// (bounded). Counts are per replica and need no coordination: N replicas admit up to N times a
// limit, which docs/operator.md tells operators to size `max_sessions` for.
import { limitKey, type Limits } from '../policy/limits.js';

export type AdmissionLimit = 'sessionsPerIdentity' | 'sessionsPerConnection' | 'connectsInFlightPerIdentity';

/** Why a session was not admitted: answered to the client as SQLSTATE 53300 with `message`. */
export interface LimitRefusal {
  refused: AdmissionLimit;
  /** The policy key to raise (`limits.sessions_per_identity`, `connections.ehr.max_sessions`, ...). */
  key: string;
  /** The limit in force. */
  value: number;
  /** How many the identity or connection held when refused. */
  count: number;
  message: string;
}

export interface AdmissionRequest {
  /** A stable key for the identity (issuer and subject). */
  identity: string;
  /** How the identity is named in messages (alice@example.com). */
  name: string;
  connection: string;
  limits: Pick<Limits, 'sessionsPerIdentity' | 'connectsInFlightPerIdentity'>;
  /** The connection's ceiling (`max_sessions`, else `limits.sessions_per_connection`) and its key. */
  connectionLimit: { value: number; key: string };
}

interface IdentityCounts {
  sessions: number;
  opening: number;
  /** Sessions waiting for a connect slot, first come first served. */
  waiting: AdmissionTicket[];
}

export interface AdmissionCounts {
  identities: Record<string, { sessions: number; opening: number; waiting: number }>;
  connections: Record<string, number>;
}

export class Admission {
  private readonly identities = new Map<string, IdentityCounts>();
  private readonly connections = new Map<string, number>();

  /** A ticket holding one session of the identity and the connection, or why not. */
  admit(req: AdmissionRequest): AdmissionTicket | LimitRefusal {
    const id = this.identities.get(req.identity);
    const held = id?.sessions ?? 0;
    const perIdentity = req.limits.sessionsPerIdentity;
    if (held >= perIdentity) {
      return refusal('sessionsPerIdentity', limitKey('sessionsPerIdentity'), perIdentity, held,
        `too many sessions for ${req.name}: ${held} open, at most ${perIdentity}`);
    }
    const onConnection = this.connections.get(req.connection) ?? 0;
    const { value, key } = req.connectionLimit;
    if (onConnection >= value) {
      return refusal('sessionsPerConnection', key, value, onConnection,
        `too many sessions on connection "${req.connection}": ${onConnection} open, at most ${value}`);
    }
    const counts = id ?? { sessions: 0, opening: 0, waiting: [] };
    counts.sessions++;
    this.identities.set(req.identity, counts);
    this.connections.set(req.connection, onConnection + 1);
    return new AdmissionTicket(this, req, counts);
  }

  /** What is held now (tests, diagnostics): identities by key, connections by name. */
  counts(): AdmissionCounts {
    const identities: AdmissionCounts['identities'] = {};
    for (const [k, c] of this.identities) identities[k] = { sessions: c.sessions, opening: c.opening, waiting: c.waiting.length };
    return { identities, connections: Object.fromEntries(this.connections) };
  }

  /** @internal A ticket gives its session back. */
  give(req: AdmissionRequest, counts: IdentityCounts): void {
    counts.sessions--;
    if (counts.sessions === 0 && counts.opening === 0 && this.identities.get(req.identity) === counts) this.identities.delete(req.identity);
    const n = (this.connections.get(req.connection) ?? 1) - 1;
    if (n > 0) this.connections.set(req.connection, n);
    else this.connections.delete(req.connection);
  }
}

function refusal(refused: AdmissionLimit, key: string, value: number, count: number, text: string): LimitRefusal {
  return { refused, key, value, count, message: `${text} (${key})` };
}

type TicketState = 'admitted' | 'waiting' | 'opening' | 'open' | 'released';

/** One admitted session's hold on the counts; release() is idempotent and must be called on every path. */
export class AdmissionTicket {
  private state: TicketState = 'admitted';
  private go?: () => void;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly admission: Admission,
    private readonly req: AdmissionRequest,
    private readonly counts: IdentityCounts,
  ) {}

  /**
   * Calls `go` once the identity has fewer than `connects_in_flight_per_identity` sessions opening
   * (at once, or when one ahead finishes opening); after `waitMs` of waiting calls `refused` instead,
   * having released the ticket.
   */
  whenConnectSlot(go: () => void, refused: (r: LimitRefusal) => void, waitMs: number): void {
    if (this.state !== 'admitted') return;
    const limit = this.req.limits.connectsInFlightPerIdentity;
    if (this.counts.opening < limit && this.counts.waiting.length === 0) {
      this.state = 'opening';
      this.counts.opening++;
      go();
      return;
    }
    this.state = 'waiting';
    this.go = go;
    this.counts.waiting.push(this);
    this.timer = setTimeout(() => {
      const opening = this.counts.opening;
      this.release();
      refused(refusal('connectsInFlightPerIdentity', limitKey('connectsInFlightPerIdentity'), limit, opening,
        `too many sessions of ${this.req.name} being opened: ${opening} at once for ${Math.round(waitMs / 1000)} s, at most ${limit}`));
    }, waitMs);
    this.timer.unref();
  }

  /** The session is open (or failed to open): its connect slot goes to the next one waiting. */
  connected(): void {
    if (this.state !== 'opening') return;
    this.state = 'open';
    this.counts.opening--;
    this.wakeNext();
  }

  release(): void {
    const was = this.state;
    if (was === 'released') return;
    this.state = 'released';
    if (this.timer) clearTimeout(this.timer);
    this.go = undefined;
    if (was === 'waiting') {
      const i = this.counts.waiting.indexOf(this);
      if (i >= 0) this.counts.waiting.splice(i, 1);
    } else if (was === 'opening') {
      this.counts.opening--;
    }
    this.admission.give(this.req, this.counts);
    if (was === 'opening') this.wakeNext();
  }

  private wakeNext(): void {
    const { counts } = this;
    // Each waiter checks against the limit it was admitted under (the policy may have changed since).
    while (counts.waiting.length > 0 && counts.opening < counts.waiting[0]!.req.limits.connectsInFlightPerIdentity) {
      const next = counts.waiting.shift()!;
      next.start();
    }
  }

  private start(): void {
    if (this.timer) clearTimeout(this.timer);
    const go = this.go;
    this.go = undefined;
    this.state = 'opening';
    this.counts.opening++;
    go?.();
  }
}
