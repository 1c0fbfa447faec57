// What a client is told when the gateway cannot open its upstream connection: one FATAL
// ErrorResponse naming the connection and the cause, with a hint where the client can act. The
// client holds no database credentials, so what concerns them (the role, the password, an auth
// failure) is the operator's problem: it is said so, and the details stay in the server's log.
import type { ErrorFields } from '../pg/index.js';
import type { UpstreamError } from './upstream.js';
import { limitKey } from '../policy/limits.js';

/** SQLSTATE for an authentication failure upstream: the server rejected the gateway, not the client. */
export const SQLSTATE_UPSTREAM_REJECTED = '08004';

/** PostgreSQL's answers that are passed on with their own SQLSTATE and a fixed text. */
const SERVER_STATES: Record<string, { what: string; hint: (connection: string) => string }> = {
  // too_many_connections: max_connections, a role's or a database's CONNECTION LIMIT.
  '53300': {
    what: 'the database has no free connection slot (PostgreSQL answered 53300, too many connections)',
    hint: (c) => `try again shortly; the operator can keep connections.${c}.max_sessions below the database's max_connections less its other clients`,
  },
  // cannot_connect_now: starting up, shutting down, in recovery.
  '57P03': {
    what: 'the database is not accepting connections now',
    hint: () => 'the database is starting up, shutting down or in recovery; try again in a few seconds',
  },
};

/**
 * The ErrorResponse fields for a failed upstream connect of `connection`. `role` (the connection's
 * upstream user) is scrubbed from any server text passed on.
 */
export function upstreamFailure(connection: string, e: UpstreamError, role?: string): ErrorFields {
  const head = `phigate could not connect to the database of "${connection}"`;
  const fatal = (code: string, message: string, hint?: string, detail?: string): ErrorFields => ({
    severity: 'FATAL', code, message, ...(detail ? { detail } : {}), ...(hint ? { hint } : {}),
  });
  switch (e.kind) {
    case 'auth':
      return fatal(SQLSTATE_UPSTREAM_REJECTED, `phigate could not authenticate to the database of "${connection}"; ask the operator`,
        'the database refused the gateway\'s own credentials for this connection (your login is fine); the gateway\'s log says why');
    case 'timeout':
      return fatal('08001', `${head}: ${e.reason} (${limitKey('upstreamConnectTimeoutMs')})`,
        'the database host accepts connections but does not answer; try again later or ask the operator');
    case 'unreachable':
      return fatal('08001', `${head}: ${e.reason}`, 'the database may be down or restarting; try again shortly, or ask the operator');
    case 'server': {
      const code = e.serverFields?.C ?? e.sqlstate;
      const known = SERVER_STATES[code];
      if (known) {
        const said = scrub(e.serverFields?.M, role);
        return fatal(code, `${head}: ${known.what}`, known.hint(connection), said === undefined ? undefined : `PostgreSQL: ${said}`);
      }
      // Anything else PostgreSQL refused the session with keeps its SQLSTATE and (scrubbed) text.
      const message = scrub(e.serverFields?.M, role) ?? e.reason;
      return fatal(code, `${head}: ${message}`, scrub(e.serverFields?.H, role));
    }
    case 'tls':
    case 'protocol':
      return fatal(e.sqlstate, `${head}: ${e.reason}`, 'ask the operator to check the connection\'s upstream and tls settings');
  }
}

/** Server text with the connection's upstream role name replaced; undefined stays undefined. */
function scrub(text: string | undefined, role: string | undefined): string | undefined {
  if (text === undefined || !role) return text;
  return text.split(role).join('<connection role>');
}
