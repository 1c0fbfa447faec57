// The evidence endpoints' paths, query parameters and answers, shared by the gateway (http.ts) and
// the CLI (client.ts). Time parameters are ISO 8601 or a duration back from now (`since=24h`).
import type { StoredRecord } from './events.js';
import type { SessionSummary } from './search.js';

export const AUDIT_SEARCH_PATH = '/v1/audit/search';
export const AUDIT_VERIFY_PATH = '/v1/audit/verify';
export const AUDIT_EXPORT_PATH = '/v1/audit/export';
export const SESSIONS_PATH = '/v1/sessions';

/** GET /v1/sessions/{id}/recording: the recording's NDJSON, with its seal in these headers. */
export const HEADER_SEAL = 'x-phigate-seal';
/** ok | mismatch | unsealed (no session.end yet) */
export const HEADER_SEAL_STATUS = 'x-phigate-seal-status';
export const HEADER_SESSION = 'x-phigate-session';

export type SealStatus = 'ok' | 'mismatch' | 'unsealed';

/** Query parameters of GET /v1/audit/search (all optional; `type` is comma-separated). */
export const SEARCH_PARAMS = ['user', 'connection', 'table', 'decision', 'sql', 'since', 'until', 'type', 'session', 'limit'] as const;

export interface SearchResponse {
  records: StoredRecord[];
  /** More records match than `limit`. */
  more: boolean;
  /** Records in the log. */
  total: number;
  elapsed_ms: number;
}

export interface SessionsResponse {
  sessions: SessionSummary[];
  more: boolean;
}
