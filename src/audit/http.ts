// The gateway's evidence endpoints: audit search, verify and export, the session list, and session
// recordings for replay. Search, export and replay are for auditors and admins only, and each one is
// itself an audit record, written before the answer is sent: if it cannot be written, no answer.
//
//   GET /v1/audit/search?user=&connection=&table=&decision=&sql=&since=&until=&type=&session=&limit=
//   GET /v1/audit/verify                      → VerifyReport (recording seals included)
//   GET /v1/audit/export?since=&until=        → the bundle (application/x-ndjson)
//   GET /v1/sessions?user=&connection=&since=&until=&limit=   (others than auditors: their own only)
//   GET /v1/sessions/{id}/recording           → the recording (NDJSON), seal in X-Phigate-Seal*
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Identity } from '../auth/index.js';
import type { Logger } from '../common/log.js';
import { PhigateError } from '../common/errors.js';
import { logRefusal, sendJson, sendProblem } from '../server/http.js';
import {
  AUDIT_EXPORT_PATH, AUDIT_SEARCH_PATH, AUDIT_VERIFY_PATH, HEADER_SEAL, HEADER_SEAL_STATUS, HEADER_SESSION, SESSIONS_PATH,
  type SealStatus, type SearchResponse, type SessionsResponse,
} from './api.js';
import { AuditWriteError } from './errors.js';
import { privilegedEvent, type AuditEvent, type PrivilegedAction } from './events.js';
import { planExport, writeBundle, type ExportPlan } from './export.js';
import type { AuditLog } from './log.js';
import { DEFAULT_LIMIT, MAX_LIMIT, findSessionEnd, sealOf, type SearchFilters, type SearchResult } from './search.js';
import { SearchThread } from './search-thread.js';
import { loadIndex } from './search-index.js';
import { TimeArgumentError, parseTimeArg } from './time.js';
import { hashFile, verifyLog } from './verify.js';
import { recordingFileName } from '../recording/format.js';
import { RecordingLookupError, resolveRecording } from '../recording/files.js';
import { StoreError } from '../store/shared-db.js';
import { AmbiguousSession, type SharedEvidence } from './shared-evidence.js';
import type { ChainReport } from './shared-verify.js';

export interface AuditRoutesDeps {
  /** The server's --data-dir: evidence is under audit/, recordings/ and policies/. */
  dataDir: string;
  log: AuditLog;
  /** The gateway's bearer-token check; throws its refusal (code + message) when it says no. */
  authenticate: (req: IncomingMessage) => Promise<Identity>;
  /** Members of the policy's auditor or admin groups. */
  isAuditor: (identity: Identity) => boolean;
  logger?: Logger;
  /**
   * With a shared store (`--store`): search, sessions and replay answer from every replica's
   * shipped evidence; `flush` ships this replica's newest records first.
   */
  shared?: {
    /** This replica's chain (its checkpoint key's fingerprint). */
    chain: string;
    evidence: SharedEvidence;
    flush(): Promise<void>;
    verify(): Promise<ChainReport[]>;
    exportPlan(chain: string, range: { since?: number; until?: number }): Promise<ExportPlan | undefined>;
  };
}

export interface AuditRoutes {
  /** Answers `req` when its path is an evidence endpoint; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** Stops the search thread. */
  close(): Promise<void>;
}

export function auditDirOf(dataDir: string): string {
  return join(dataDir, 'audit');
}

export function recordingsDirOf(dataDir: string): string {
  return join(dataDir, 'recordings');
}

export function policiesDirOf(dataDir: string): string {
  return join(dataDir, 'policies');
}

export function createAuditRoutes(deps: AuditRoutesDeps): AuditRoutes {
  const auditDir = auditDirOf(deps.dataDir);
  const recordingsDir = recordingsDirOf(deps.dataDir);
  const searches = new SearchThread();

  async function who(req: IncomingMessage): Promise<Identity> {
    try {
      return await deps.authenticate(req);
    } catch (err) {
      // The gateway refuses with a PhigateError; anything else is a bug and goes to its 500 handler.
      if (err instanceof PhigateError) logRefusal(deps.logger, req, err);
      throw err;
    }
  }

  /**
   * Every attempt at evidence is on the record: a refusal (best effort: the refusal stands whether
   * or not it could be written), and a grant before anything is answered (fail closed).
   */
  function refuse(identity: Identity, action: PrivilegedAction, target: string, problem: PhigateError): never {
    deps.logger?.warn('evidence access refused', { subject: identity.subject, name: identity.name, action, code: problem.code });
    try {
      deps.log.append(privilegedEvent(identity, action, target, 'refused', problem.code));
    } catch (err) {
      deps.logger?.error('could not record a refused evidence access', { action, error: (err as Error).message });
    }
    throw problem;
  }

  function grant(identity: Identity, action: PrivilegedAction, target: string): void {
    record(privilegedEvent(identity, action, target, 'granted'));
  }

  function requireAuditor(identity: Identity, what: string, action: PrivilegedAction, target: string): void {
    if (!deps.isAuditor(identity)) {
      refuse(identity, action, target,
        new PhigateError(`${identity.name}: only auditors and admins (the policy's identity.auditor_groups and admin_groups) may ${what}`, 'forbidden'));
    }
    grant(identity, action, target);
  }

  /** The evidence of an evidence access; no record, no answer. */
  function record(event: AuditEvent): void {
    try {
      deps.log.append(event);
    } catch (err) {
      if (err instanceof AuditWriteError) throw new PhigateError(`the audit log cannot be written (${err.fault}); refusing an access that would go unrecorded`, 'unavailable');
      throw err;
    }
  }

  async function checkpoint(): Promise<void> {
    try {
      await deps.log.checkpoint();
    } catch (err) {
      if (err instanceof AuditWriteError) throw new PhigateError(`the audit log cannot be written (${err.fault}): ${err.message}`, 'unavailable');
      throw err;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const path = url.pathname;
    const isAudit = path === AUDIT_SEARCH_PATH || path === AUDIT_VERIFY_PATH || path === AUDIT_EXPORT_PATH;
    const isSessions = path === SESSIONS_PATH || path.startsWith(`${SESSIONS_PATH}/`);
    if (!isAudit && !isSessions) return false;
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new PhigateError(`${req.method} is not supported on ${path}; use GET`, 'method_not_allowed');
      const identity = await who(req);
      if (path === AUDIT_SEARCH_PATH) await search(identity, url, res);
      else if (path === AUDIT_VERIFY_PATH) await verify(identity, res);
      else if (path === AUDIT_EXPORT_PATH) await exportRange(identity, url, res);
      else if (path === SESSIONS_PATH) await sessions(identity, url, res);
      else {
        const parts = path.slice(SESSIONS_PATH.length + 1).split('/');
        if (parts.length === 2 && parts[1] === 'recording') await recording(identity, decodeURIComponent(parts[0]!), res);
        else throw new PhigateError(`no such endpoint: ${path}`, 'not_found');
      }
    } catch (err) {
      if (err instanceof StoreError) {
        deps.logger?.error('shared store unavailable for evidence', { path, error: err.message });
        err = new PhigateError('the shared store is unavailable, so evidence of every replica cannot be read now; try again, or ask each replica directly', 'unavailable');
      }
      if (err instanceof PhigateError) {
        if (!res.headersSent) sendProblem(res, err);
        else res.destroy();
        return true;
      }
      throw err;
    }
    return true;
  }

  async function search(identity: Identity, url: URL, res: ServerResponse): Promise<void> {
    requireAuditor(identity, 'search the audit log', 'audit.search', 'audit log');
    const filters = searchFilters(url);
    deps.log.flushIndex();
    const r = deps.shared ? await sharedSearch(filters) : await searches.search(auditDir, filters);
    record({ type: 'audit.search', user: identity.name, filters: describeFilters(url), results: r.records.length });
    const body: SearchResponse = { records: r.records, more: r.more, total: r.total, elapsed_ms: Math.round(r.elapsedMs) };
    sendJson(res, 200, body);
  }

  async function verify(identity: Identity, res: ServerResponse): Promise<void> {
    requireAuditor(identity, 'verify the audit log', 'audit.verify', 'audit log');
    // Sign the head first, so every record so far is covered, then check the files as they are.
    await checkpoint();
    const report = await verifyLog(auditDir, { recordingsDir, endOffset: () => deps.log.stats().bytes });
    if (deps.shared) {
      // The checkpoint just signed goes to the store too, so this replica's chain there is anchored to its head.
      await deps.shared.flush();
      report.replicas = await deps.shared.verify();
      for (const c of report.replicas) report.problems.push(...c.problems);
      report.ok = report.ok && report.replicas.every((c) => c.ok);
    }
    sendJson(res, 200, report);
  }

  async function exportRange(identity: Identity, url: URL, res: ServerResponse): Promise<void> {
    requireAuditor(identity, 'export the audit log', 'audit.export', 'audit log');
    const since = timeParam(url, 'since');
    const until = timeParam(url, 'until');
    const replica = url.searchParams.get('replica') || undefined;
    // A checkpoint of the head: the exported range is then covered by a signature however recent.
    await checkpoint();
    deps.log.flushIndex();
    let plan: ExportPlan;
    const other = replica !== undefined && deps.shared !== undefined && replica !== deps.shared.chain;
    if (other) {
      await deps.shared!.flush();
      const p = await deps.shared!.exportPlan(replica, { since, until });
      if (!p) throw new PhigateError(`no replica chain ${replica} in the shared store (phigate audit verify lists them)`, 'not_found');
      plan = p;
    } else {
      plan = planExport(auditDir, { since, until, policiesDir: policiesDirOf(deps.dataDir), index: loadIndex(auditDir) });
      if (replica !== undefined && plan.header.key !== replica) {
        throw new PhigateError(`this gateway's chain is ${plan.header.key ?? 'unsigned'}, and it has no shared store to find ${replica} in`, 'not_found');
      }
    }
    // The export's own record is written before a byte of the bundle leaves (fail closed).
    record({
      type: 'audit.export', user: identity.name, records: plan.header.records?.count ?? 0, ...(other ? { replica } : {}),
      ...(since !== undefined ? { since: new Date(since).toISOString() } : {}),
      ...(until !== undefined ? { until: new Date(until).toISOString() } : {}),
      ...(plan.header.records ? { first_seq: plan.header.records.first_seq, last_seq: plan.header.records.last_seq } : {}),
    });
    res.writeHead(200, {
      'content-type': 'application/x-ndjson',
      'content-disposition': `attachment; filename="phigate-audit-${new Date().toISOString().replace(/[:.]/g, '-')}.ndjson"`,
      'cache-control': 'no-store',
    });
    const summary = await writeBundle(plan, res);
    res.end();
    deps.logger?.info('audit export', { by: identity.name, records: summary.header.records?.count ?? 0 });
  }

  async function sessions(identity: Identity, url: URL, res: ServerResponse): Promise<void> {
    const auditor = deps.isAuditor(identity);
    const asked = url.searchParams.get('user') ?? undefined;
    const target = `sessions of ${asked ?? (auditor ? 'everyone' : identity.name)}`;
    if (!auditor && asked !== undefined && asked !== identity.name) {
      refuse(identity, 'sessions.list', target, new PhigateError(`${identity.name}: only auditors and admins may list other people's sessions`, 'forbidden'));
    }
    grant(identity, 'sessions.list', target);
    deps.log.flushIndex();
    const f = {
      user: auditor ? asked : identity.name,
      connection: url.searchParams.get('connection') ?? undefined,
      since: timeParam(url, 'since'), until: timeParam(url, 'until'), limit: limitParam(url),
    };
    const r = deps.shared ? await sharedSessions(f) : await searches.sessions(auditDir, f);
    const body: SessionsResponse = { sessions: r.sessions, more: r.more };
    sendJson(res, 200, body);
  }

  async function sharedSearch(filters: SearchFilters): Promise<SearchResult> {
    await deps.shared!.flush();
    return deps.shared!.evidence.search(filters);
  }

  async function sharedSessions(f: Parameters<SharedEvidence['sessions']>[0]): ReturnType<SharedEvidence['sessions']> {
    await deps.shared!.flush();
    return deps.shared!.evidence.sessions(f);
  }

  /** A recording this replica does not hold, from the shared store. */
  async function sharedRecording(identity: Identity, idOrPrefix: string, res: ServerResponse): Promise<boolean> {
    if (!deps.shared) return false;
    await deps.shared.flush();
    let r;
    try {
      r = await deps.shared.evidence.recording(idOrPrefix);
    } catch (err) {
      if (err instanceof AmbiguousSession) throw new PhigateError(err.message, 'ambiguous');
      throw err;
    }
    if (!r) return false;
    const status: SealStatus = !r.seal ? 'unsealed' : r.seal === r.sha256 ? 'ok' : 'mismatch';
    record({ type: 'replay', user: identity.name, session: r.session });
    res.writeHead(200, {
      'content-type': 'application/x-ndjson', 'content-length': r.content.length, 'cache-control': 'no-store',
      [HEADER_SESSION]: r.session, [HEADER_SEAL_STATUS]: status, ...(r.seal ? { [HEADER_SEAL]: r.seal } : {}),
    });
    res.end(r.content);
    return true;
  }

  async function recording(identity: Identity, idOrPrefix: string, res: ServerResponse): Promise<void> {
    requireAuditor(identity, 'replay sessions', 'replay', `session ${idOrPrefix}`);
    let session: string;
    try {
      session = resolveSession(recordingsDir, idOrPrefix);
    } catch (err) {
      if (err instanceof PhigateError && err.code === 'not_found' && (await sharedRecording(identity, idOrPrefix, res))) return;
      throw err;
    }
    const file = join(recordingsDir, recordingFileName(session));
    deps.log.flushIndex();
    const seal = sealOf(findSessionEnd(auditDir, session));
    const actual = await hashFile(file);
    const status: SealStatus = !seal ? 'unsealed' : seal.sha256 === actual ? 'ok' : 'mismatch';
    record({ type: 'replay', user: identity.name, session });
    res.writeHead(200, {
      'content-type': 'application/x-ndjson',
      'content-length': statSync(file).size,
      'cache-control': 'no-store',
      [HEADER_SESSION]: session,
      [HEADER_SEAL_STATUS]: status,
      ...(seal ? { [HEADER_SEAL]: seal.sha256 } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      createReadStream(file).on('error', reject).on('end', resolve).pipe(res);
    });
  }

  return { handle, close: () => searches.close() };
}

/** A session id, or a unique prefix of one (at least 4 characters), among the recordings. */
function resolveSession(recordingsDir: string, idOrPrefix: string): string {
  try {
    return resolveRecording(recordingsDir, idOrPrefix);
  } catch (err) {
    if (!(err instanceof RecordingLookupError)) throw err;
    throw new PhigateError(err.message, err.reason === 'invalid' ? 'bad_request' : err.reason);
  }
}

function timeParam(url: URL, name: string): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return undefined;
  try {
    return parseTimeArg(name, v);
  } catch (err) {
    if (err instanceof TimeArgumentError) throw new PhigateError(err.message, 'bad_request');
    throw err;
  }
}

function limitParam(url: URL): number {
  const v = url.searchParams.get('limit');
  if (v === null || v === '') return DEFAULT_LIMIT;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new PhigateError(`limit must be an integer from 1 to ${MAX_LIMIT}`, 'bad_request');
  return n;
}

export function searchFilters(url: URL): SearchFilters {
  const p = url.searchParams;
  const str = (k: string): string | undefined => {
    const v = p.get(k);
    return v === null || v === '' ? undefined : v;
  };
  const types = str('type')?.split(',').map((s) => s.trim()).filter(Boolean);
  return {
    user: str('user'), connection: str('connection'), table: str('table'), decision: str('decision'), sql: str('sql'),
    session: str('session'), since: timeParam(url, 'since'), until: timeParam(url, 'until'), limit: limitParam(url),
    ...(types && types.length ? { types } : {}),
  };
}

/** The filters as given (for the audit.search record). */
function describeFilters(url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of url.searchParams) if (v !== '') out[k] = v.slice(0, 500);
  return out;
}
