// What the session core asks its shell to do. The shell executes actions in the order they were
// pushed: a `record` that must precede what follows (a statement's evidence before the statement
// reaches PostgreSQL) is pushed first, and when it cannot be written the shell drops everything
// queued after it and reports the failure back to the core, which ends the session (fail closed).
import type { AuditEvent } from '../../audit/events.js';
import type { ApprovalRequestInput } from '../../approvals/types.js';
import type { ControlMessage } from '../../tunnel/protocol.js';
import type { AnalysisRequest } from '../analysis.js';

export type Action =
  /** Bytes for the client (the shell applies backpressure towards the database). */
  | { kind: 'client'; data: Buffer }
  /** A tunnel control message (JSON text frame) for the CLI. */
  | { kind: 'control'; msg: ControlMessage }
  /** Bytes for the database, in order; `whole`, when given, is the client's chunk whose bytes are exactly `out`. */
  | { kind: 'upstream'; out: Buffer[]; whole: Buffer | undefined }
  /**
   * Evidence to append. `failClosed`: nothing queued after it may happen unless it is written (the
   * shell reports success with `recorded`, failure with `recordFailed`); otherwise a failure is only logged.
   */
  | { kind: 'record'; events: AuditEvent[]; failClosed: boolean }
  /** The startup packet was accepted: open the upstream with these parameters (admission, pool or connect, masking catalog). */
  | { kind: 'connect'; forwarded: Record<string, string> }
  /** The client's session has started: read the upstream from now on. */
  | { kind: 'attachUpstream' }
  /** The upstream cannot serve this session (unsafe settings, no recording, no evidence): drop it at once. */
  | { kind: 'destroyUpstream' }
  /** Stop or go on reading the client's stream. */
  | { kind: 'pauseClient' }
  | { kind: 'resumeClient' }
  /** Ask the approval service (the shell reports the request's id with `holdRequested`, its outcome with `holdDecided`). */
  | { kind: 'requestApproval'; input: ApprovalRequestInput }
  | { kind: 'withdrawApproval'; why: string }
  /** Analyse a large text off the event loop (reported with `analysed` or `analysisCrashed`). */
  | { kind: 'analyse'; req: AnalysisRequest }
  /** Read the catalog again, newer than `since` (reported with `catalogRefreshed`). */
  | { kind: 'refreshCatalog'; since: number }
  /** Call `idleTimerFired` after `ms` (one timer at a time; the shell clears it at `end`). */
  | { kind: 'idleTimer'; ms: number }
  /** Call `nextTurn` at the next turn of the event loop (a long run of messages was cut). */
  | { kind: 'nextTurn' }
  /** A CancelRequest came instead of a session: pass it on (this replica's registry, or the others). */
  | { kind: 'cancelRequest'; processId: number; secretKey: Buffer }
  /** DDL ran and committed: the connection's catalog is stale. */
  | { kind: 'ddl' }
  /** Close the client's stream with this code and reason. */
  | { kind: 'closeClient'; code: number; reason?: string }
  /** The session is over: let go of the upstream (closed, or given back to the pool), timers, the cancel key; close the stream if still open. */
  | { kind: 'end'; why: string }
  /** Last action of a session: its session.end record was pushed before; tell the gateway. */
  | { kind: 'ended' };
