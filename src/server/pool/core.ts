// The upstream pool's decisions, as pure functions over plain data: whether a connection a session
// gives back may be reset for reuse, which statements reset it and prepare it for the next session,
// and a reader that follows the server's answers to those statements frame by frame. The sockets
// and timers that act on these decisions live in pool.ts.
import { serialize } from 'pg-protocol';
import {
  BackendType, ProtocolError, decodeErrorFieldMap, decodeParameterStatus, type BackendFrame,
} from '../../pg/index.js';

export type TransactionStatus = 'I' | 'T' | 'E';

/** What a session knows about its upstream connection when it ends. */
export interface SessionEnd {
  /**
   * Every message sent upstream has been answered (ReadyForQuery count matches), nothing is
   * half-sent or half-read, no COPY runs, and the server sent no FATAL.
   */
  quiet: boolean;
  /** The status of the last ReadyForQuery. */
  status: TransactionStatus;
}

/** A pooled connection as the decisions see it. */
export interface ConnectionFacts {
  createdAt: number;
  /** The pool's configuration generation it was opened under (policy reload, new credentials). */
  generation: number;
  /** A cancel request for the session that held it has not finished yet. */
  cancelsInFlight: number;
}

export type ReleaseVerdict =
  | { action: 'reset'; rollback: boolean }
  | { action: 'close'; reason: string };

/**
 * What to do with a connection a session gave back. Only a connection whose every message was
 * answered is reset: one a client left mid-statement, mid-COPY or mid-pipeline could still deliver
 * that statement's rows or side effects to the next session, so it is closed.
 */
export function releaseVerdict(end: SessionEnd, c: ConnectionFacts, now: number, maxLifetimeMs: number, generation: number, retired: boolean): ReleaseVerdict {
  if (!end.quiet) return { action: 'close', reason: 'session ended with the connection busy' };
  if (retired || c.generation !== generation) return { action: 'close', reason: 'pool settings or credentials changed' };
  if (now - c.createdAt >= maxLifetimeMs) return { action: 'close', reason: 'max_lifetime reached' };
  return { action: 'reset', rollback: end.status !== 'I' };
}

/**
 * Extensions that keep per-session state DISCARD ALL does not clear: dblink's and postgres_fdw's
 * open remote connections (made with credentials another identity supplied), the procedural
 * languages' global dictionaries. While one is installed, connections are not reused.
 */
export const STATEFUL_EXTENSIONS = ['dblink', 'postgres_fdw', 'plpython3u', 'plpythonu', 'plpython2u', 'plperl', 'plperlu', 'pltcl', 'pltclu', 'plv8'];

/** Why a reset refused reuse when a STATEFUL_EXTENSIONS entry is installed (said once per pool, not per session). */
export const STATEFUL_EXTENSION_REASON = 'an extension with session state DISCARD ALL cannot clear is installed';

const CHECK_SQL = `SELECT count(*) FROM pg_catalog.pg_extension WHERE extname IN (${STATEFUL_EXTENSIONS.map((e) => `'${e}'`).join(', ')})`;

/**
 * The statements that return a connection to the state of a fresh one, each its own Query (DISCARD
 * ALL cannot run inside the implicit transaction of a multi-statement Query), sent in one write.
 * DISCARD ALL closes cursors (WITH HOLD too), resets the session authorization, role and every
 * setting (custom ones included), deallocates prepared statements, unlistens every channel,
 * releases session advisory locks, drops temporary tables and cached plans and forgets sequence
 * values; a simple Query also drops the unnamed prepared statement. The last one finds stateful
 * extensions. Answers: one ReadyForQuery per Query.
 */
export function resetMessages(rollback: boolean): { bytes: Buffer; readies: number } {
  const sql = [...(rollback ? ['ROLLBACK'] : []), 'DISCARD ALL', CHECK_SQL];
  return { bytes: Buffer.concat(sql.map((text) => serialize.query(text))), readies: sql.length };
}

/** Startup parameters a session asks for that are applied with set_config on a pooled connection. */
export const SESSION_PARAMS = ['application_name', 'datestyle', 'timezone', 'intervalstyle', 'extra_float_digits', 'search_path', 'client_encoding'];

/** A string literal under standard_conforming_strings on (which the gateway requires of every connection). */
function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * The one Query that gives a pooled connection the settings a new session's StartupMessage asked
 * for, as PostgreSQL would have at startup: set_config with is_local false, so the value is read as
 * a startup parameter is (a search_path of "a, b" names two schemas). application_name is always
 * set (to '' when the client sent none) so the pool's own name never shows as the session's.
 * client_encoding comes last: nothing after it is read in the new encoding. The same round trip
 * proves a connection that sat idle still answers.
 */
export function prepareQuery(params: Record<string, string>): Buffer {
  const wanted = new Map<string, string>([['application_name', '']]);
  for (const [k, v] of Object.entries(params)) {
    const name = k.toLowerCase();
    if (SESSION_PARAMS.includes(name)) wanted.set(name, v);
  }
  const ordered = [...wanted].sort(([a], [b]) => Number(a === 'client_encoding') - Number(b === 'client_encoding'));
  const calls = ordered.map(([k, v]) => `pg_catalog.set_config(${literal(k)}, ${literal(v)}, false)`);
  return serialize.query(`SELECT ${calls.join(', ')}`);
}

/** The outcome of a run of statements on a pooled connection. */
export interface ScriptResult {
  /** The first ErrorResponse's fields (C, M, ...), if any. */
  error?: Record<string, string>;
  /** The server ended the connection (FATAL) or sent what these statements cannot produce. */
  broken?: string;
  /** ParameterStatus values the server reported, in order. */
  parameters: Array<[string, string]>;
  /** The first column of each DataRow, as text (null as undefined). */
  values: Array<string | undefined>;
  /** The status of the last ReadyForQuery. */
  status: TransactionStatus;
}

/**
 * Follows the answers to `readies` Query messages. Whatever the previous session left on the wire
 * after its last ReadyForQuery (a notification, a notice) is read and dropped here too.
 */
export class ScriptReader {
  private seen = 0;
  readonly result: ScriptResult = { parameters: [], values: [], status: 'I' };

  constructor(private readonly readies: number) {}

  /** One backend message; true once the script is over (every ReadyForQuery seen, or broken). */
  frame(f: BackendFrame): boolean {
    const r = this.result;
    switch (f.type) {
      case BackendType.ReadyForQuery: {
        const s = String.fromCharCode(f.body[0] ?? 0);
        if (s !== 'I' && s !== 'T' && s !== 'E') return this.break('invalid ReadyForQuery');
        r.status = s;
        this.seen++;
        return this.seen >= this.readies;
      }
      case BackendType.ErrorResponse: {
        const fields = decodeErrorFieldMap(f.body);
        if (fields instanceof ProtocolError) return this.break('malformed ErrorResponse');
        const severity = fields['V'] ?? fields['S'];
        if (severity === 'FATAL' || severity === 'PANIC') return this.break(`server ended the connection (${fields['C'] ?? '?'})`);
        r.error ??= fields;
        return false;
      }
      case BackendType.ParameterStatus: {
        const p = decodeParameterStatus(f.body);
        if (p instanceof ProtocolError) return this.break('malformed ParameterStatus');
        r.parameters.push([p.name, p.value]);
        return false;
      }
      case BackendType.DataRow: { // first column only
        if (f.body.length < 2 || f.body.readInt16BE(0) < 1) return false;
        const len = f.body.length >= 6 ? f.body.readInt32BE(2) : -1;
        r.values.push(len < 0 ? undefined : f.body.toString('utf8', 6, 6 + len));
        return false;
      }
      case BackendType.RowDescription:
      case BackendType.CommandComplete:
      case BackendType.EmptyQueryResponse:
      case BackendType.NoticeResponse:
      case BackendType.NotificationResponse:
        return false;
      default:
        return this.break(`unexpected '${String.fromCharCode(f.type)}' message`);
    }
  }

  private break(why: string): boolean {
    this.result.broken = why;
    return true;
  }
}

/**
 * Whether a reset left the connection fit for another identity: no error, out of any transaction,
 * and no stateful extension installed.
 */
export function resetOutcome(r: ScriptResult): { ok: true } | { ok: false; reason: string } {
  if (r.broken) return { ok: false, reason: r.broken };
  if (r.error) return { ok: false, reason: `reset failed (${r.error['C'] ?? '?'})` };
  if (r.status !== 'I') return { ok: false, reason: 'still in a transaction after reset' };
  const stateful = r.values[r.values.length - 1];
  if (stateful !== '0') return { ok: false, reason: STATEFUL_EXTENSION_REASON };
  return { ok: true };
}

/** Waiters, idle and busy connections of one pool: what acquire should do now. */
export function acquireStep(s: { idle: number; total: number; resetting: number; waiting: number; size: number }): 'take' | 'open' | 'wait' {
  if (s.idle > 0) return 'take';
  // A reset takes one round trip; opening (authentication) takes far longer: wait for one under way.
  if (s.resetting > s.waiting) return 'wait';
  return s.total < s.size ? 'open' : 'wait';
}
