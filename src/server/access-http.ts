// The just-in-time access endpoints: `POST /v1/access-requests` asks for access to a connection,
// `GET /v1/access-requests/{id}?wait=S` follows one of the caller's own requests (long poll, <= 55 s).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/index.js';
import type { ConnectionPolicy } from '../policy/file.js';
import { ACCESS_REQUESTS_PATH, HEADER_SESSION_LABEL, type AccessRequestBody, type AccessRequestView } from '../tunnel/protocol.js';
import { normalizeLabel } from '../tunnel/label.js';
import { decideConnectionAccess } from './access.js';
import { AccessError, type AccessGrants, type AccessRequestState } from './access-grants.js';
import { authenticated, headerValue, readBody, refuse, sendError, sendJson, sendProblem, Refused } from './http.js';
import type { Logger } from '../common/log.js';
import { StoreError } from '../store/shared-db.js';

const MAX_REQUEST_BYTES = 64 * 1024;
const MAX_WAIT_SECONDS = 55;

export interface AccessRoutesDeps {
  authenticate: (req: IncomingMessage) => Promise<Identity>;
  log: Logger;
  access: AccessGrants;
  /** The connection of that name under the policy in force. */
  connection: (name: string) => ConnectionPolicy | undefined;
}

export function createAccessRoutes(deps: AccessRoutesDeps): { handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> } {
  const { log, access } = deps;

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname !== ACCESS_REQUESTS_PATH && !url.pathname.startsWith(`${ACCESS_REQUESTS_PATH}/`)) return false;
    const identity = await authenticated(deps.authenticate, log, req, res);
    if (!identity) return true;
    if (url.pathname === ACCESS_REQUESTS_PATH) {
      if (req.method !== 'POST') return sendError(res, 'method_not_allowed', 'POST an access request');
      let body: AccessRequestBody;
      try {
        body = JSON.parse(await readBody(req, MAX_REQUEST_BYTES)) as AccessRequestBody;
      } catch {
        return sendError(res, 'bad_request', 'expected JSON { connection, reason?, duration? }');
      }
      const connection = typeof body.connection === 'string' ? deps.connection(body.connection) : undefined;
      if (!connection) return refuse(log, req, res, new Refused('unknown_connection', `no connection named "${String(body.connection)}"`, identity.subject));
      const allowed = decideConnectionAccess(identity.groups, connection);
      if (!allowed.allowed) return refuse(log, req, res, new Refused('forbidden', `${identity.name}: ${allowed.reason}`, identity.subject));
      try {
        const label = normalizeLabel(headerValue(req, HEADER_SESSION_LABEL));
        const st = await access.request(identity, connection, {
          reason: typeof body.reason === 'string' ? body.reason : undefined,
          duration: typeof body.duration === 'string' ? body.duration : undefined,
          label,
        });
        log.info('access requested', { request: st.id, subject: identity.subject, connection: connection.name, status: st.status });
        sendJson(res, st.status === 'pending' ? 202 : 200, viewOf(st));
      } catch (err) {
        if (err instanceof StoreError) return sendError(res, 'unavailable', `access cannot be requested now: ${err.message}`);
        if (!(err instanceof AccessError)) throw err;
        sendProblem(res, err);
      }
      return true;
    }
    if (req.method !== 'GET') return sendError(res, 'method_not_allowed', 'use GET');
    const id = decodeURIComponent(url.pathname.slice(ACCESS_REQUESTS_PATH.length + 1));
    const wait = Math.min(Math.max(Number(url.searchParams.get('wait') ?? 0) || 0, 0), MAX_WAIT_SECONDS) * 1000;
    const st = await access.state(id, identity, wait);
    if (!st) return sendError(res, 'not_found', `no access request ${id} of yours`);
    sendJson(res, 200, viewOf(st));
    return true;
  }

  return { handle };
}

function viewOf(st: AccessRequestState): AccessRequestView {
  return {
    id: st.id, connection: st.connection, status: st.status,
    ...(st.status === 'approved' ? { approver: st.grant.approver, expires_at: new Date(st.grant.expiresAt).toISOString() } : {}),
    ...(st.status === 'pending' ? { expires_at: new Date(st.expiresAt).toISOString() } : {}),
    ...(st.status !== 'approved' && st.status !== 'pending' ? { approver: st.approver, reason: st.reason } : {}),
  };
}
