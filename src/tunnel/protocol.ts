// The tunnel's wire contract shared by `phigate connect|exec` and `phigate server`:
// one WebSocket per client connection; binary frames carry PostgreSQL bytes unchanged,
// text frames carry JSON control messages for the CLI to show on stderr.

/** WebSocket upgrade path for a connection's tunnel stream. */
export const TUNNEL_PATH_PREFIX = '/v1/tunnel/';
/** Preflight: may this token use this connection? GET, same auth as the tunnel. */
export const CONNECTIONS_PATH = '/v1/connections';

export const HEADER_SESSION_LABEL = 'x-phigate-session-label';
export const HEADER_REASON = 'x-phigate-reason';
export const HEADER_CLIENT = 'x-phigate-client';

/** Body of every refusal (HTTP 4xx/5xx on preflight or upgrade). */
export interface Refusal {
  error: RefusalCode;
  message: string;
  /** What to do about it, when the code's usual hint would mislead (e.g. a refused policy change). */
  hint?: string;
}
export type RefusalCode =
  | 'unauthenticated' // no, bad or expired token → CLI exit 3
  | 'forbidden' // identity not allowed on this connection → CLI exit 4
  | 'unknown_connection' // → CLI exit 1
  | 'access_required' // a just-in-time access grant is needed first → CLI exit 4
  | 'unavailable' // server cannot decide right now (fail closed) → CLI exit 5
  | 'token_misplaced'; // a token outside the Authorization header (URL, other header) → CLI exit 2

/** Every refusal code; their HTTP statuses, exits and SQLSTATE are common/errors.ts ERROR_TABLE's. */
export const REFUSAL_CODES: readonly RefusalCode[] = ['unauthenticated', 'forbidden', 'unknown_connection', 'access_required', 'unavailable', 'token_misplaced'];

export function isRefusalCode(code: unknown): code is RefusalCode {
  return typeof code === 'string' && (REFUSAL_CODES as readonly string[]).includes(code);
}

/** Control messages the server sends as text frames. */
export type ControlMessage =
  | { type: 'notice'; message: string }
  | { type: 'error'; message: string };

/** Close codes (4000-4999 are for applications). */
export const CloseCode = {
  Normal: 1000,
  ServerShutdown: 1001,
  ProtocolError: 4400,
  Unauthenticated: 4401,
  Forbidden: 4403,
  /** A session over one of the gateway's limits (sessions per identity or connection, connects in flight). */
  Refused: 4429,
  UpstreamFailed: 4502,
  /** The session outlived a time limit: idle in a transaction, or a tunnel that stopped answering. */
  Timeout: 4408,
} as const;

export interface ConnectionInfo {
  name: string;
  type: 'postgres';
  database: string;
}

export interface PreflightResponse {
  connection: ConnectionInfo;
  identity: { name: string; subject: string; kind: string; groups: string[] };
  /** Present when the connection asks this identity for just-in-time access approval. */
  access?: { required: true; approvers: string[]; max_duration: string; grant?: { id: string; approver: string; expires_at: string } };
}

export const ACCESS_REQUESTS_PATH = '/v1/access-requests';

export interface AccessRequestBody {
  connection: string;
  reason?: string;
  duration?: string;
}

export interface AccessRequestView {
  id: string;
  connection: string;
  status: 'pending' | 'approved' | 'denied' | 'timeout' | 'withdrawn' | 'cancelled';
  approver?: string;
  reason?: string;
  expires_at?: string;
}

export function tunnelPath(connection: string): string {
  return `${TUNNEL_PATH_PREFIX}${encodeURIComponent(connection)}`;
}
