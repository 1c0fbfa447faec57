// The gateway's approvals endpoints: list, look at, approve and deny requests over HTTP, and a
// WebSocket stream that sends the viewer's list and then every change as it happens (no polling).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Identity } from '../auth/index.js';
import type { Logger } from '../common/log.js';
import { PhigateError } from '../common/errors.js';
import { authenticated, logRefusal, readBody, sendJson, sendProblem, writeRefusal } from '../server/http.js';
import {
  APPROVALS_PATH, APPROVALS_STREAM_PATH,
  type ApprovalListResponse, type ApprovalView, type DecisionBody, type StreamMessage,
} from './api.js';
import { StoreError } from '../store/shared-db.js';
import { ApprovalError, canDecide, isRequester, type ApprovalEvent, type ApprovalService } from './service.js';
import type { ApprovalRecord } from './store.js';
import { shapeOf } from './format.js';
import { APPROVAL_SCOPES, type ApprovalScope } from './types.js';

export interface ApprovalRoutesDeps {
  service: ApprovalService;
  /** The gateway's own bearer-token check; throws its refusal (code + message) when it says no. */
  authenticate: (req: IncomingMessage) => Promise<Identity>;
  log: Logger;
  /** Puts an approval decision attempt (granted or refused) on the audit record. */
  recordAttempt?: (who: Identity, action: 'approval.decide' | 'access.grant', target: string, outcome: 'granted' | 'refused', code?: string) => void;
  /** The groups whose members may decide requests under the policy in force. */
  approverGroups?: () => string[];
}

export interface ApprovalRoutes {
  /** Answers `req` when its path is an approvals endpoint; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** Takes the upgrade when it is for the approvals stream; false otherwise. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<boolean>;
  /** Ends every open stream (server shutdown). */
  close(): void;
}

const MAX_BODY_BYTES = 16 * 1024;
const MAX_REASON_CHARS = 1_000;
/** A viewer this far behind is dropped; it reconnects and gets a fresh snapshot. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const PING_INTERVAL_MS = 30_000;

export function viewOf(r: ApprovalRecord, viewer: Identity, mayDecide: (r: ApprovalRecord, who: Identity) => boolean = canDecide): ApprovalView {
  const q = r.input.requester;
  const s = r.settlement;
  let decision: ApprovalView['decision'] = null;
  if (s) {
    const o = s.outcome;
    decision = {
      approved: o.approved,
      ...(o.approved ? {} : { cause: o.cause }),
      ...(o.approver ? { approver: o.approver } : {}),
      ...(o.reason ? { reason: o.reason } : {}),
      ...(s.scope ? { scope: s.scope } : {}),
      decided_at: s.at,
    };
  }
  return {
    id: r.id,
    status: r.status,
    kind: r.input.kind,
    requester: { name: q.name, kind: q.kind, ...(q.label ? { label: q.label } : {}), subject: q.subject, issuer: q.issuer },
    session_id: r.input.sessionId,
    connection: r.input.connection,
    statement: r.input.statement,
    shape: shapeOf(r.input.statement),
    rule: r.input.rule,
    reason: r.input.reason,
    tables: [...r.input.tables],
    approvers: [...r.input.approvers],
    created_at: r.createdAt,
    expires_at: r.expiresAt,
    decision,
    can_decide: mayDecide(r, viewer),
    own: isRequester(q, viewer),
  };
}

export function createApprovalRoutes(deps: ApprovalRoutesDeps): ApprovalRoutes {
  const { service, log } = deps;
  const toView = (r: ApprovalRecord, viewer: Identity): ApprovalView => viewOf(r, viewer, (x, who) => service.mayDecide(x, who));
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4 * 1024 });
  const streams = new Set<WebSocket>();
  // Updates from other replicas may have been missed: viewers reconnect (clients do by themselves) and get a fresh snapshot.
  service.onResync(() => {
    for (const ws of streams) ws.close(4409, 'updates may have been missed; reconnect for a fresh list');
  });

  /** The caller, or the gateway's refusal of it (logged); anything else is a bug for the 500 handler. */
  const authenticate = async (req: IncomingMessage): Promise<Identity | PhigateError> => {
    try {
      return await deps.authenticate(req);
    } catch (err) {
      if (!(err instanceof PhigateError)) throw err;
      logRefusal(log, req, err);
      return err;
    }
  };

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const path = url.pathname;
    if (path !== APPROVALS_PATH && !path.startsWith(`${APPROVALS_PATH}/`)) return false;
    const parts = path.slice(APPROVALS_PATH.length).split('/').filter((p) => p !== '');
    try {
      if (parts.length === 0) {
        allow(req, ['GET', 'HEAD']);
        const viewer = await who(req, res);
        if (!viewer) return true;
        const all = ['1', 'true', 'yes'].includes(url.searchParams.get('all') ?? '');
        const records = await service.list(viewer, { all });
        const body: ApprovalListResponse = {
          approvals: records.map((r) => toView(r, viewer)), server_time: new Date().toISOString(),
          viewer: { name: viewer.name, groups: [...viewer.groups] },
          ...(deps.approverGroups ? { approver_groups: deps.approverGroups() } : {}),
        };
        sendJson(res, 200, body);
        return true;
      }
      if (parts.length === 1 && path === APPROVALS_STREAM_PATH) {
        throw new PhigateError(`${APPROVALS_STREAM_PATH} is a WebSocket endpoint; connect with an Upgrade: websocket request`, 'bad_request');
      }
      const id = decodeURIComponent(parts[0] ?? '');
      if (parts.length === 1) {
        allow(req, ['GET', 'HEAD']);
        const viewer = await who(req, res);
        if (!viewer) return true;
        sendJson(res, 200, toView(await service.get(id, viewer), viewer));
        return true;
      }
      const action = parts[1];
      if (parts.length === 2 && (action === 'approve' || action === 'deny')) {
        allow(req, ['POST']);
        const viewer = await who(req, res);
        if (!viewer) return true;
        const body = parseDecision(await readBody(req, MAX_BODY_BYTES, 'bad_request'), action === 'approve');
        const what = async (): Promise<'approval.decide' | 'access.grant'> =>
          ((await service.lookup(id).catch(() => undefined))?.input.kind === 'access' ? 'access.grant' : 'approval.decide');
        const target = `${id} (${action})`;
        try {
          const settled = await service.decide(id, viewer, { approve: action === 'approve', ...body });
          deps.recordAttempt?.(viewer, settled.input.kind === 'access' ? 'access.grant' : 'approval.decide', target, 'granted');
          sendJson(res, 200, toView(settled, viewer));
        } catch (err) {
          if (err instanceof ApprovalError) {
            log.warn('approval decision refused', { approval: id, approver: viewer.name, subject: viewer.subject, code: err.code });
            deps.recordAttempt?.(viewer, await what(), target, 'refused', err.code);
          }
          throw err;
        }
        return true;
      }
      throw new PhigateError(`no such endpoint: ${path}`, 'not_found');
    } catch (err) {
      if (err instanceof PhigateError) {
        sendProblem(res, err);
        return true;
      }
      if (err instanceof StoreError) {
        log.error('approvals store unavailable', { path, error: err.message });
        sendProblem(res, new PhigateError('approval requests cannot be read or decided now: the shared store is unavailable', 'unavailable'));
        return true;
      }
      throw err;
    }
  }

  /** The authenticated viewer, or undefined after answering the refusal the way the gateway does. */
  async function who(req: IncomingMessage, res: ServerResponse): Promise<Identity | undefined> {
    return authenticated(deps.authenticate, log, req, res);
  }

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<boolean> {
    const path = url.pathname;
    if (path !== APPROVALS_PATH && !path.startsWith(`${APPROVALS_PATH}/`)) return false;
    if (path !== APPROVALS_STREAM_PATH) {
      writeRefusal(socket, new PhigateError(`no WebSocket endpoint at ${path}; use ${APPROVALS_STREAM_PATH}`, 'not_found'));
      return true;
    }
    const r = await authenticate(req);
    if (r instanceof PhigateError) {
      writeRefusal(socket, r);
      return true;
    }
    const viewer = r;
    const all = ['1', 'true', 'yes'].includes(url.searchParams.get('all') ?? '');
    wss.handleUpgrade(req, socket, head, (ws) => {
      streams.add(ws);
      startStream(ws, viewer, all).catch((err: Error) => {
        log.error('approvals stream failed', { subject: viewer.subject, error: err.message });
        ws.close(1011, 'internal error');
      });
    });
    return true;
  }

  async function startStream(ws: WebSocket, viewer: Identity, all: boolean): Promise<void> {
    // Subscribe before reading the snapshot, so nothing that happens in between is missed; clients
    // apply messages by id, so an event that repeats what the snapshot already shows is harmless.
    let backlog: ApprovalEvent[] | undefined = [];
    const send = (msg: StreamMessage): void => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        log.warn('approvals stream too slow; dropped', { subject: viewer.subject });
        ws.terminate();
        return;
      }
      ws.send(JSON.stringify(msg));
    };
    const push = (e: ApprovalEvent): void => {
      if (!service.maySee(e.approval, viewer)) return;
      send({ type: e.type, approval: toView(e.approval, viewer), server_time: new Date().toISOString() });
    };
    const unsubscribe = service.subscribe((e) => (backlog ? backlog.push(e) : push(e)));
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) return void ws.terminate();
      alive = false;
      ws.ping();
    }, PING_INTERVAL_MS);
    ping.unref();
    // The stream is only as good as the token that opened it: close when it expires; the client
    // reconnects with a renewed one.
    const expiresIn = viewer.expiresAt.getTime() - Date.now();
    const expiry = setTimeout(() => ws.close(4401, 'token expired; reconnect with a fresh token'), Math.max(0, Math.min(expiresIn, 2 ** 31 - 1)));
    expiry.unref();
    ws.on('pong', () => (alive = true));
    // Clients send nothing meaningful; reading keeps the socket flowing.
    ws.on('message', () => {});
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      unsubscribe();
      clearInterval(ping);
      clearTimeout(expiry);
      streams.delete(ws);
    });
    const records = await service.list(viewer, { all });
    send({ type: 'snapshot', approvals: records.map((x) => toView(x, viewer)), server_time: new Date().toISOString() });
    const pending = backlog;
    backlog = undefined;
    for (const e of pending) push(e);
  }

  return {
    handle,
    upgrade,
    close() {
      for (const ws of streams) ws.close(1001, 'server shutting down');
      wss.close();
    },
  };
}

function allow(req: IncomingMessage, methods: string[]): void {
  if (!methods.includes(req.method ?? 'GET')) {
    throw new PhigateError(`${req.method} is not supported here; use ${methods.join(' or ')}`, 'method_not_allowed');
  }
}

function parseDecision(text: string, approve: boolean): DecisionBody {
  const expected = `expected {"reason": "...", "scope": ${APPROVAL_SCOPES.map((x) => `"${x}"`).join('|')}}`;
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new PhigateError(`request body is not JSON; ${expected}`, 'bad_request');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new PhigateError('request body must be a JSON object', 'bad_request');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'reason' && k !== 'scope') throw new PhigateError(`unknown field "${k.slice(0, 40)}"; expected reason, scope`, 'bad_request');
  }
  const out: DecisionBody = {};
  if (o['reason'] !== undefined && o['reason'] !== null) {
    if (typeof o['reason'] !== 'string') throw new PhigateError('reason must be a string', 'bad_request');
    if (o['reason'].length > MAX_REASON_CHARS) throw new PhigateError(`reason is longer than ${MAX_REASON_CHARS} characters`, 'bad_request');
    // It goes into the evidence, whose canonical JSON (RFC 8785, I-JSON) has no form for a lone surrogate.
    if (!o['reason'].isWellFormed()) throw new PhigateError('reason is not valid Unicode text (it holds a lone UTF-16 surrogate)', 'bad_request');
    out.reason = o['reason'];
  }
  if (o['scope'] !== undefined && o['scope'] !== null) {
    const scope = o['scope'];
    if (typeof scope !== 'string' || !(APPROVAL_SCOPES as readonly string[]).includes(scope)) {
      throw new PhigateError(`scope must be one of ${APPROVAL_SCOPES.join(', ')}`, 'bad_request');
    }
    if (!approve && scope !== 'once') throw new PhigateError(`scope "${scope}" only applies to approvals`, 'bad_request');
    out.scope = scope as ApprovalScope;
  }
  return out;
}
