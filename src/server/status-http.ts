// The gateway's status endpoints: `/healthz`, `/.well-known/phigate` (how `phigate login` gets a
// token here) and `/metrics` (open on a loopback-only gateway, else for admins and auditors; the
// `--metrics-listen` port serves it to anyone who can reach it).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/index.js';
import { authenticated, refuse, sendError, sendJson, Refused } from './http.js';
import type { Logger } from '../common/log.js';
import { METRICS_CONTENT_TYPE } from './metrics.js';

export const HEALTH_PATH = '/healthz';
export const LOGIN_INFO_PATH = '/.well-known/phigate';
export const METRICS_PATH = '/metrics';

/** What `phigate login` needs to know about how to obtain a token for this gateway. */
export interface LoginInfo {
  issuer: string;
  client_id: string;
  audience: string;
  scopes: string[];
  server_version: string;
}

export interface StatusRoutesDeps {
  authenticate: (req: IncomingMessage) => Promise<Identity>;
  log: Logger;
  health: () => Record<string, unknown>;
  loginInfo: () => LoginInfo | undefined;
  metricsText: () => Promise<string>;
  /** Whether `/metrics` on this listener needs a token (not loopback-only, or a --metrics-listen port exists). */
  metricsNeedToken: () => boolean;
  /** With a --metrics-listen port: named in the refusal, as the way to scrape without a token. */
  metricsListen: boolean;
  /** Members of the policy's admin or auditor groups. */
  isAdminOrAuditor: (identity: Identity) => boolean;
}

export interface StatusRoutes {
  /** Answers GET and HEAD only: the gateway's dispatcher refuses other methods before it gets here. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** The whole of the --metrics-listen listener. */
  metricsOnly(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export function createStatusRoutes(deps: StatusRoutesDeps): StatusRoutes {
  const { log } = deps;

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname === METRICS_PATH) {
      if (deps.metricsNeedToken()) {
        const identity = await authenticated(deps.authenticate, log, req, res);
        if (!identity) return true;
        if (!deps.isAdminOrAuditor(identity)) {
          const where = deps.metricsListen ? ' (or scrape the --metrics-listen port)' : '';
          return refuse(log, req, res, new Refused('forbidden', `${identity.name}: only admins and auditors may read /metrics${where}`, identity.subject));
        }
      }
      await sendMetrics(req, res);
      return true;
    }
    if (url.pathname === HEALTH_PATH) {
      sendJson(res, 200, deps.health());
      return true;
    }
    if (url.pathname === LOGIN_INFO_PATH) {
      const info = deps.loginInfo();
      if (info) sendJson(res, 200, info);
      else sendError(res, 'login_unavailable', 'this gateway advertises no interactive login; use a workload token (PHIGATE_TOKEN) or ask the operator to set cli_client_id on an issuer');
      return true;
    }
    return false;
  }

  async function sendMetrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return void sendError(res, 'method_not_allowed', 'use GET');
    const text = await deps.metricsText();
    res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  }

  async function metricsOnly(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== METRICS_PATH) return void sendError(res, 'not_found', 'this listener serves /metrics only');
    await sendMetrics(req, res);
  }

  return { handle, metricsOnly };
}
