// The connection endpoints: `GET /v1/connections` (what the caller may connect to) and
// `GET /v1/connections/{name}` (preflight: would a tunnel be admitted, and is an access grant needed).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/index.js';
import type { ConnectionPolicy } from '../policy/file.js';
import { CONNECTIONS_PATH, type ConnectionInfo, type PreflightResponse } from '../tunnel/protocol.js';
import { decideConnectionAccess } from './access.js';
import { AccessGrants, type AccessGrant } from './access-grants.js';
import { authenticated, refuse, sendJson, Refused } from './http.js';
import type { Logger } from '../common/log.js';
import { parseUpstreamUrl } from './upstream.js';

export interface ConnectionRoutesDeps {
  authenticate: (req: IncomingMessage) => Promise<Identity>;
  log: Logger;
  /** The connections of the policy in force. */
  connections: () => Iterable<ConnectionPolicy>;
  /** Authenticates and checks allow_groups (no grant check); throws a Refused when it says no. */
  admit: (req: IncomingMessage, name: string) => Promise<{ identity: Identity; connection: ConnectionPolicy }>;
  /** The identity's access grant in force on the connection; throws a Refused when it cannot tell. */
  activeGrant: (identity: Identity, connection: string) => Promise<AccessGrant | undefined>;
}

/** Answers GET and HEAD only: the gateway's dispatcher refuses other methods before it gets here. */
export function createConnectionRoutes(deps: ConnectionRoutesDeps): { handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> } {
  const { log } = deps;

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname === CONNECTIONS_PATH) {
      const identity = await authenticated(deps.authenticate, log, req, res);
      if (!identity) return true;
      const list = [...deps.connections()]
        .filter((c) => decideConnectionAccess(identity.groups, c).allowed)
        .map((c) => connectionInfo(c));
      sendJson(res, 200, { connections: list });
      return true;
    }
    if (!url.pathname.startsWith(`${CONNECTIONS_PATH}/`)) return false;
    const name = decodeURIComponent(url.pathname.slice(CONNECTIONS_PATH.length + 1));
    try {
      const { identity, connection } = await deps.admit(req, name);
      const body: PreflightResponse = {
        connection: connectionInfo(connection),
        identity: { name: identity.name, subject: identity.subject, kind: identity.kind, groups: identity.groups },
      };
      if (AccessGrants.required(identity, connection)) {
        const grant = await deps.activeGrant(identity, connection.name);
        body.access = {
          required: true, approvers: connection.accessApproval?.approvers ?? [], max_duration: connection.accessApproval?.maxDuration ?? '',
          ...(grant ? { grant: { id: grant.id, approver: grant.approver, expires_at: new Date(grant.expiresAt).toISOString() } } : {}),
        };
      }
      sendJson(res, 200, body);
    } catch (err) {
      if (err instanceof Refused) return refuse(log, req, res, err);
      throw err;
    }
    return true;
  }

  return { handle };
}

export function connectionInfo(c: ConnectionPolicy): ConnectionInfo {
  let database = '';
  try {
    database = parseUpstreamUrl(c.upstream).database;
  } catch {
    // an unparseable upstream is reported when a session tries to use it
  }
  return { name: c.name, type: c.type, database };
}
