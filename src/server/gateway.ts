// The `phigate server` process core: builds the gateway's parts (policy, audit log, approvals, pools,
// masking, metrics) and its HTTP(S) listener, whose routes live beside their subjects (*-http.ts,
// approvals/http.ts, audit/http.ts). It keeps the WebSocket tunnel endpoint: every tunnel stream is
// authenticated (bearer JWT) and checked against the connection's allow_groups before the upgrade
// completes; refusals are answered with a JSON reason (server/http.ts).
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { createPublicKey, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { AuthError, TokenVerifier, bearerToken, misplacedToken, misplacedTokenMessage, type Identity, type IssuerConfig } from '../auth/index.js';
import { approverGroupsOf, parsePolicyFile, type ConnectionPolicy, type PolicyFile } from '../policy/file.js';
import { PolicyFileError } from '../policy/errors.js';
import { policyVersion } from '../policy/version.js';
import { PolicyHistory, type PolicyActivation } from '../policy/history.js';
import { readFileSync } from 'node:fs';
import { HEADER_REASON, HEADER_SESSION_LABEL, TUNNEL_PATH_PREFIX } from '../tunnel/protocol.js';
import { livenessHeader, watchTunnel } from '../tunnel/liveness.js';
import { decideConnectionAccess } from './access.js';
import { isLoopbackHost } from './loopback.js';
import { normalizeLabel } from '../tunnel/label.js';
import { AccessGrants, type AccessGrant } from './access-grants.js';
import { CancelRegistry } from './cancel-registry.js';
import { ClientSession, type SessionOptions, type SourceMaskingHandle } from './session/index.js';
import { createSourceMasking, type SourceMaskingSetup } from '../masking/source/index.js';
import { AnalysisPool, type SourceMaskingSpec } from './analysis-pool.js';
import type { AnalysisRequest, TextAnalysis } from './analysis.js';
import { CatalogCache } from './catalog.js';
import { Admission } from './admission.js';
import { UpstreamPools } from './pool/pool.js';
import { poolSettings } from '../policy/pool.js';
import { limitKey, sessionsFor } from '../policy/limits.js';
import { checkUpstreamPrivileges, privilegeWarning } from './upstream-privileges.js';
import { loadOrCreateTokenKey } from './secrets.js';
import { gateMasking } from '../masking/index.js';
import { resolveUpstreamTarget } from './targets.js';
import type { UpstreamTarget } from './upstream.js';
import { pathOf, type Logger } from '../common/log.js';
import { createDevIssuer, devServiceOwners, DEV_MOUNT, type DevIssuer } from '../auth/dev-issuer.js';
import { initClassifier } from '../policy/classify/index.js';
import { ShapeClassifierCache } from '../policy/shape-cache.js';
import { ApprovalService, type ApprovalStore } from '../approvals/service.js';
import type { SharedDatabase } from '../store/shared-db.js';
import { createApprovalRoutes, type ApprovalRoutes } from '../approvals/http.js';
import { createAuditRoutes, policiesDirOf, type AuditRoutes, type AuditRoutesDeps } from '../audit/http.js';
import { VERSION } from '../version.js';
import { join } from 'node:path';
import { AuditLog } from '../audit/log.js';
import { AuditShipper } from '../audit/shipper.js';
import { SharedEvidence } from '../audit/shared-evidence.js';
import { verifySharedChains } from '../audit/shared-verify.js';
import { planSharedExport } from '../audit/shared-export.js';
import { PolicyBroadcast, type PublishedPolicy } from './shared-policy.js';
import { CancelRelay, type RemoteCancel } from './shared-cancel.js';
import { loadOrCreateSigningKey } from '../audit/keys.js';
import { closeInterruptedSessions } from './interrupted-sessions.js';
import { privilegedEvent, type AuditEvent } from '../audit/events.js';
import { GatewayMetrics, type ConnectionMetrics } from './metrics.js';
import { PhigateError } from '../common/errors.js';
import { headerValue, logRefusal, refuse, sendError, sendJson, writeRefusal, Refused } from './http.js';
import { createAccessRoutes } from './access-http.js';
import { createConnectionRoutes } from './connections-http.js';
import { createPolicyRoutes } from './policy-http.js';
import { createStatusRoutes, type LoginInfo, type StatusRoutes } from './status-http.js';

export type { LoginInfo };

export interface GatewayOptions {
  policy: PolicyFile;
  host: string;
  port: number;
  tls?: { cert: Buffer | string; key: Buffer | string };
  log: Logger;
  /** Defaults to a verifier over the policy's issuers. */
  verifier?: TokenVerifier;
  resolveTarget?: (conn: ConnectionPolicy) => UpstreamTarget;
  /** Largest single WebSocket message accepted from a client. */
  maxMessageBytes?: number;
  /** Dev mode: run an OpenID Provider under /oidc and trust it (loopback only). */
  dev?: { stateDir: string; accessTokenTtlSec?: number };
  /** Where state and evidence live; without it the policy history is kept in memory only. */
  dataDir?: string;
  /** The file the policy came from, for reloads and the history. */
  policyFile?: string;
  /** Where approval requests live; default in memory (this process only). Closed on stop. */
  approvalStore?: ApprovalStore;
  /** The database replicas share (`--store`): evidence is shipped to it. Closed on stop. */
  sharedDb?: SharedDatabase;
  /** The tokenization key (`--masking-key-file`, shared by replicas); default: one under the data directory. */
  maskingKey?: Buffer;
  /**
   * `--metrics-listen`: a plain-HTTP listener serving only `/metrics`, to anyone who can reach it.
   * With it, `/metrics` on the main listener always needs an admin's or auditor's token.
   */
  metricsListen?: { host: string; port: number };
}

/** A route module: answers `req` when the path is its own; false otherwise. */
interface HttpRoutes {
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
}

export class Gateway {
  private server?: Server;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<ClientSession>();
  readonly cancels = new CancelRegistry();
  /** Sessions per identity and per connection on this replica (limits.*, connections.NAME.max_sessions). */
  readonly admission = new Admission();
  /** Authenticated upstream connections reused across sessions (connections.NAME.pool). */
  readonly pools: UpstreamPools;
  private verifier?: TokenVerifier;
  /** Shared by all sessions: a repeated statement is classified once. */
  readonly classifier = new ShapeClassifierCache();
  private devIssuer?: DevIssuer;
  private policy: PolicyFile;
  /** SHA-256 of the canonical form of the policy in force; every decision is taken under it. */
  policyVersion: string;
  private readonly history?: PolicyHistory;
  private readonly memoryHistory: PolicyActivation[] = [];
  /** The evidence log (with a data directory); sessions refuse statements it cannot record. */
  audit?: AuditLog;
  private extraIssuers: IssuerConfig[] = [];
  /** Held statements wait here for a person; sessions call `approvals.request`. */
  readonly approvals: ApprovalService;
  private readonly catalogs = new Map<string, CatalogCache>();
  private readonly sourceMaskings = new Map<string, { policy: PolicyFile; setup: SourceMaskingSetup; spec: SourceMaskingSpec }>();
  /** Analyses large statement texts off the event loop (analysis-pool.ts). */
  readonly analysis: AnalysisPool;
  /** Connections whose upstream role was checked (or is being checked) for server-access privileges. */
  private readonly roleChecks = new Set<string>();
  private stopped = false;
  private maskingKey?: Buffer;
  /** Just-in-time access grants (connections with access_approval). */
  readonly access: AccessGrants;
  private readonly approvalRoutes: ApprovalRoutes;
  private readonly accessRoutes: HttpRoutes;
  private readonly policyRoutes: HttpRoutes;
  private readonly connectionRoutes: HttpRoutes;
  private readonly statusRoutes: StatusRoutes;
  /** Evidence endpoints (audit search/verify/export, sessions, recordings); with a data directory. */
  private auditRoutes?: AuditRoutes;
  /** The audit checkpoint key (with a data directory); names this replica's chain in the shared store. */
  private signingKey?: KeyObject;
  /** Passes CancelRequests for other replicas' keys on (with --store). */
  private cancelRelay?: CancelRelay;
  /** Shares `policy apply` with the other replicas (with --store). */
  private policyBroadcast?: PolicyBroadcast;
  /** Sends the evidence to the shared store (with --store and a data directory). */
  shipper?: AuditShipper;
  /** Prometheus metrics of this gateway (its own registry). */
  readonly metrics: GatewayMetrics;
  private metricsServer?: Server;

  constructor(private readonly opts: GatewayOptions) {
    this.policy = opts.policy;
    this.policyVersion = policyVersion(opts.policy.source);
    this.history = opts.dataDir ? new PolicyHistory(opts.dataDir) : undefined;
    this.approvals = new ApprovalService({
      log: opts.log, webhook: opts.policy.approvals.webhook, store: opts.approvalStore,
      rules: () => ({
        reasonRequired: this.policy.approvals.reasonRequired, unownedServiceApprovers: this.policy.approvals.unownedServiceApprovers,
        oversightGroups: [...this.policy.adminGroups, ...this.policy.auditorGroups],
      }),
    });
    this.access = new AccessGrants(this.approvals, (g) => this.onAccessExpired(g), Date.now, (g, user, reason) => this.record({
      type: 'access.granted', grant: g.id, user, connection: g.connection, until: new Date(g.expiresAt).toISOString(),
      approval: g.id, by: g.approver, reason,
    }), this.approvals.shared ? this.approvals : undefined);
    this.pools = new UpstreamPools(opts.log);
    this.metrics = new GatewayMetrics({
      connections: () => this.policy.connections.keys(),
      pools: () => this.pools.stats(),
      sessions: () => [...this.sessions].map((s) => ({ connection: s.opts.connection.name, holding: s.holding })),
      ...(opts.sharedDb ? { shipping: () => this.shipper?.stats() } : {}),
    });
    this.approvalRoutes = createApprovalRoutes({
      service: this.approvals, authenticate: (req) => this.authenticate(req), log: opts.log,
      recordAttempt: (who, action, target, outcome, code) => this.record(privilegedEvent(who, action, target, outcome, code)),
      approverGroups: () => approverGroupsOf(this.policy),
    });
    const authenticate = (req: IncomingMessage): Promise<Identity> => this.authenticate(req);
    const log = opts.log;
    this.accessRoutes = createAccessRoutes({ authenticate, log, access: this.access, connection: (name) => this.policy.connections.get(name) });
    this.policyRoutes = createPolicyRoutes({
      authenticate, log, policy: () => this.policy, version: () => this.policyVersion, history: () => this.policyHistory(),
      activate: (text, by) => this.activatePolicy(text, 'api', by), broadcast: () => this.policyBroadcast, record: (e) => this.record(e),
    });
    this.connectionRoutes = createConnectionRoutes({
      authenticate, log, connections: () => this.policy.connections.values(),
      admit: (req, name) => this.admit(req, name, false), activeGrant: (identity, name) => this.activeGrant(identity, name),
    });
    this.statusRoutes = createStatusRoutes({
      authenticate, log,
      // A store outage does not make a replica unhealthy (statements still run and are recorded
      // locally); the shipping state is here for monitoring.
      health: () => ({ status: 'ok', sessions: this.sessions.size, ...(this.shipper ? { evidence_shipping: this.shipper.stats() } : {}) }),
      loginInfo: () => this.loginInfo(),
      metricsText: () => this.metrics.text(),
      metricsNeedToken: () => Boolean(opts.metricsListen) || !isLoopbackHost(opts.host),
      metricsListen: Boolean(opts.metricsListen),
      isAdminOrAuditor: (id) => id.groups.some((g) => this.policy.adminGroups.includes(g) || this.policy.auditorGroups.includes(g)),
    });
    this.analysis = new AnalysisPool(opts.log);
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: opts.maxMessageBytes ?? 256 * 1024 * 1024,
    });
    // The CLI pings with the same timing, so a slow reader the gateway cannot ping keeps its tunnel.
    this.wss.on('headers', (headers: string[]) => headers.push(livenessHeader(this.tunnelTiming())));
  }

  /** limits.tunnel_ping_interval and tunnel_timeout of the policy in force (for tunnels opened from now). */
  private tunnelTiming(): { intervalMs: number; timeoutMs: number } {
    const l = this.policy.limits;
    return { intervalMs: l.tunnelPingIntervalMs, timeoutMs: l.tunnelTimeoutMs };
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  async start(): Promise<{ url: string; port: number; metricsUrl?: string }> {
    await initClassifier();
    if (this.opts.dataDir && !this.audit) {
      const log = this.opts.log;
      const signingKey = loadOrCreateSigningKey(this.opts.dataDir);
      this.signingKey = signingKey;
      this.audit = AuditLog.open(join(this.opts.dataDir, 'audit'), {
        signingKey,
        timings: this.metrics.audit,
        onError: (err) => log.error('audit log failed; statements are refused until it is repaired', { error: err.message, code: err.fault }),
      });
      // The previous process's sessions end before this one starts (a crash left them open).
      closeInterruptedSessions(this.audit, join(this.opts.dataDir, 'recordings'), log);
      if (this.opts.sharedDb) {
        this.shipper = new AuditShipper({
          db: this.opts.sharedDb, log: this.audit, signingKey, recordingsDir: join(this.opts.dataDir, 'recordings'),
          policiesDir: policiesDirOf(this.opts.dataDir), logger: log,
        });
        await this.shipper.start();
      }
    }
    if (this.audit && this.opts.dataDir && !this.auditRoutes) {
      const shipper = this.shipper;
      this.auditRoutes = createAuditRoutes({
        dataDir: this.opts.dataDir, log: this.audit, authenticate: (req) => this.authenticate(req), logger: this.opts.log,
        isAuditor: (id) => id.groups.some((g) => this.policy.auditorGroups.includes(g) || this.policy.adminGroups.includes(g)),
        ...(this.opts.sharedDb && shipper ? { shared: this.sharedEvidence(this.opts.sharedDb, shipper) } : {}),
      });
    }
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.onRequest(req, res).catch((err: Error) => {
        this.opts.log.error('request failed', { path: pathOf(req.url), error: err.message });
        // A bug, not an error of the model: the status says so, the body keeps its old code.
        if (!res.headersSent) sendJson(res, 500, { error: 'unavailable', message: 'internal error' });
      });
    };
    const server = this.opts.tls
      ? createHttpsServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, handler)
      : createHttpServer(handler);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onUpgrade(req, socket, head).catch((err: Error) => {
        this.opts.log.error('upgrade failed', { error: err.message });
        socket.destroy();
      });
    });
    server.keepAliveTimeout = 5_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = boundPort(server, this.opts.port);
    const url = `${this.opts.tls ? 'https' : 'http'}://${hostForUrl(this.opts.host)}:${port}`;
    let metricsUrl: string | undefined;
    if (this.opts.metricsListen && !this.metricsServer) {
      const { host: mHost, port: mPort } = this.opts.metricsListen;
      const ms = createHttpServer((req, res) => {
        this.statusRoutes.metricsOnly(req, res).catch((err: Error) => this.opts.log.error('metrics failed', { error: err.message }));
      });
      ms.keepAliveTimeout = 5_000;
      await new Promise<void>((resolve, reject) => {
        ms.once('error', (err: NodeJS.ErrnoException) => reject(new PhigateError(
          `cannot listen on ${hostForUrl(mHost)}:${mPort} for --metrics-listen: ${err.code ?? err.message}`, 'error',
          err.code === 'EADDRINUSE' ? 'another process holds that port; pick another --metrics-listen' : 'check the --metrics-listen address')));
        ms.listen(mPort, mHost, () => {
          ms.removeAllListeners('error');
          resolve();
        });
      });
      this.metricsServer = ms;
      metricsUrl = `http://${hostForUrl(mHost)}:${boundPort(ms, mPort)}/metrics`;
    }
    // The dev issuer's URL contains the port, known only now; requests wait for it below.
    const extra: IssuerConfig[] = [];
    if (this.opts.dev) {
      this.devIssuer = await createDevIssuer({ baseUrl: url, stateDir: this.opts.dev.stateDir, accessTokenTtlSec: this.opts.dev.accessTokenTtlSec });
      // The dev issuer's `dev-<name>` clients stand for <name>: one person, two identities.
      extra.push({ issuer: this.devIssuer.issuer, audience: this.devIssuer.audience, groupsClaim: 'groups', serviceOwners: devServiceOwners() });
    }
    this.extraIssuers = extra;
    this.verifier = this.opts.verifier ?? verifierFor(this.policy, extra);
    this.record({ type: 'server.start', version: VERSION, pid: process.pid, listen: url, policy: this.policyVersion });
    this.checkUpstreamRoles();
    this.recordActivation('startup', undefined);
    if (this.opts.sharedDb && !this.policyBroadcast) {
      this.policyBroadcast = await PolicyBroadcast.open(this.opts.sharedDb, (p) => this.applyPublished(p));
      // Another replica's CancelRequest: same check as a local one; a key this replica did not issue is another's.
      this.cancelRelay = await CancelRelay.open(this.opts.sharedDb, (c) => void this.cancels.cancel(c.processId, c.secretKey, c, this.opts.log, { via: 'replica' }));
    }
    return { url, port, ...(metricsUrl ? { metricsUrl } : {}) };
  }

  /**
   * Makes `text` the policy in force after validating it completely; on any problem the current
   * policy stays and the error says why. New statements are decided under the new version at once.
   */
  activatePolicy(text: string, source: 'sighup' | 'api' | 'replica', by?: string): { version: string; changed: boolean } {
    const file = this.opts.policyFile ?? '<policy>';
    const next = parsePolicyFile(text, source === 'api' ? '<request body>' : source === 'replica' ? '<policy applied on another replica>' : file);
    const version = policyVersion(next.source);
    if (version === this.policyVersion) return { version, changed: false };
    if (!this.opts.verifier) this.verifier = verifierFor(next, this.extraIssuers);
    // A connection whose definition changed (upstream, TLS, credentials' source, pool settings) or
    // went away starts over: its pooled connections drain (idle ones now, leased ones at release).
    for (const [name, old] of this.policy.connections) {
      const now = next.connections.get(name);
      if (!now || JSON.stringify(now) !== JSON.stringify(old)) this.pools.drain(name);
    }
    this.policy = next;
    this.policyVersion = version;
    this.approvals.setWebhook(next.approvals.webhook);
    this.recordActivation(source, by);
    return { version, changed: true };
  }

  /** SIGHUP: re-read the policy file; a broken file is logged and ignored. */
  reloadPolicyFile(): void {
    const file = this.opts.policyFile;
    if (!file) return;
    try {
      const { version, changed } = this.activatePolicy(readFileSync(file, 'utf8'), 'sighup');
      if (!changed) this.opts.log.info('policy unchanged', { version });
    } catch (err) {
      this.opts.log.error('policy reload rejected; the previous policy stays in force', { error: (err as Error).message, version: this.policyVersion });
    }
  }

  policyHistory(): PolicyActivation[] {
    return this.history ? this.history.list() : [...this.memoryHistory].reverse();
  }

  /** Gateway-level evidence; a failure is logged (the log itself then refuses statements). */
  record(event: AuditEvent): void {
    if (!this.audit) return;
    try {
      this.audit.append(event);
    } catch (err) {
      this.opts.log.error('could not write audit record', { type: event.type, error: (err as Error).message });
    }
  }

  private recordActivation(source: string, by: string | undefined): void {
    this.record({ type: 'policy.activated', policy: this.policyVersion, source, by, file: this.opts.policyFile });
    const entry: PolicyActivation = { version: this.policyVersion, activated_at: new Date().toISOString(), source, by, file: this.opts.policyFile };
    if (this.history) this.history.record(entry, this.policy.source);
    else this.memoryHistory.push(entry);
    this.opts.log.info('policy activated', { version: this.policyVersion, source, by, rules: this.policy.rules.length, default: this.policy.default });
  }

  /** The login endpoint's answer: the dev issuer, else the first configured issuer with a CLI client. */
  loginInfo(): LoginInfo | undefined {
    if (this.devIssuer) {
      const d = this.devIssuer;
      return { issuer: d.issuer, client_id: d.clientId, audience: d.audience, scopes: d.scopes, server_version: VERSION };
    }
    const i = this.policy.issuers.find((x) => x.cliClientId);
    if (!i?.cliClientId) return undefined;
    return {
      issuer: i.issuer, client_id: i.cliClientId, audience: i.audience,
      scopes: i.cliScopes ?? ['openid', 'offline_access'], server_version: VERSION,
    };
  }

  /** Stops accepting, ends every session with an admin-shutdown error, closes the listener. */
  async stop(reason = 'stop'): Promise<void> {
    // Sessions still open end first (each writes its session.end), so server.stop is the log's last word.
    this.stopped = true;
    const live = this.sessions.size;
    for (const s of [...this.sessions]) s.terminate('57P01', 'terminating connection because phigate server is shutting down');
    this.record({ type: 'server.stop', reason, sessions: live });
    this.wss.close();
    // Approval streams are upgraded sockets the listener no longer tracks: end them, or close() waits.
    this.approvalRoutes.close();
    await this.approvals.close();
    await this.opts.approvalStore?.close?.().catch((err: Error) => this.opts.log.error('approval store close failed', { error: err.message }));
    this.access.close();
    for (const c of this.catalogs.values()) c.stop();
    // The sessions gave their connections back above: the pools close them all.
    await this.pools.close();
    await this.analysis.close();
    await this.auditRoutes?.close();
    // Sessions end first (their session.end records), then the log closes with a final checkpoint.
    await new Promise((r) => setImmediate(r));
    await this.audit?.close().catch((err: Error) => this.opts.log.error('audit log close failed', { error: err.message }));
    // The last records and the closing checkpoint go to the shared store too (bounded; the next start sends what is left).
    await this.shipper?.stop();
    await this.opts.sharedDb?.close();
    for (const server of [this.metricsServer, this.server]) {
      if (!server) continue;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const misplaced = this.misplacedToken(req, url);
    if (misplaced) return void refuse(this.opts.log, req, res, misplaced);
    if (await this.approvalRoutes.handle(req, res, url)) return;
    if (this.auditRoutes && (await this.auditRoutes.handle(req, res, url))) return;
    if (this.devIssuer && (url.pathname === DEV_MOUNT || url.pathname.startsWith(`${DEV_MOUNT}/`))) {
      this.devIssuer.handle(req, res);
      return;
    }
    if (await this.accessRoutes.handle(req, res, url)) return;
    if (await this.policyRoutes.handle(req, res, url)) return;
    // The routes below answer GET and HEAD only.
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 'method_not_allowed', `${req.method} is not supported on ${url.pathname}`);
      return;
    }
    if (await this.statusRoutes.handle(req, res, url)) return;
    if (await this.connectionRoutes.handle(req, res, url)) return;
    sendError(res, 'not_found', `no such endpoint: ${url.pathname}`);
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const misplaced = this.misplacedToken(req, url);
    if (misplaced) {
      logRefusal(this.opts.log, req, misplaced);
      writeRefusal(socket, misplaced);
      return;
    }
    if (await this.approvalRoutes.upgrade(req, socket, head, url)) return;
    if (!url.pathname.startsWith(TUNNEL_PATH_PREFIX)) {
      writeRefusal(socket, new Refused('unknown_connection', `no tunnel endpoint at ${url.pathname}`));
      return;
    }
    const name = decodeURIComponent(url.pathname.slice(TUNNEL_PATH_PREFIX.length));
    let admitted: { identity: Identity; connection: ConnectionPolicy };
    try {
      admitted = await this.admit(req, name);
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      logRefusal(this.opts.log, req, err, name);
      writeRefusal(socket, err);
      return;
    }
    const { identity, connection } = admitted;
    const metrics = this.metrics.forConnection(connection.name);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      metrics.sessionStarted();
      const session = new ClientSession(ws, {
        id: randomUUID(),
        identity,
        connection,
        label: normalizeLabel(headerValue(req, HEADER_SESSION_LABEL)),
        reason: headerValue(req, HEADER_REASON),
        remoteAddress: req.socket.remoteAddress,
        cancels: this.cancels,
        ...(this.cancelRelay ? { forwardCancel: (c: RemoteCancel) => this.cancelRelay!.forward(c) } : {}),
        log: this.opts.log,
        resolveTarget: (c) => this.targetFor(c),
        admit: () => {
          const limits = this.policy.limits;
          // The connection as the policy in force names it: max_sessions may have changed since the tunnel opened.
          const max = this.policy.connections.get(connection.name)?.maxSessions ?? connection.maxSessions;
          return this.admission.admit({
            identity: `${identity.issuer}\n${identity.subject}`, name: identity.name, connection: connection.name, limits,
            connectionLimit: { value: sessionsFor(limits, max), key: max === undefined ? limitKey('sessionsPerConnection') : `connections.${connection.name}.max_sessions` },
          });
        },
        connectWaitMs: this.policy.limits.upstreamConnectTimeoutMs,
        ...this.poolFor(connection, metrics),
        policy: () => this.policy,
        policyVersion: () => this.policyVersion,
        ...this.maskingFor(identity, connection),
        recordingsDir: this.opts.dataDir ? join(this.opts.dataDir, 'recordings') : undefined,
        audit: this.audit,
        classifier: this.classifier,
        approvals: this.approvals,
        metrics,
        onClose: (s) => {
          this.sessions.delete(s);
          metrics.sessionEnded(s.endReason ?? 'unknown');
        },
        onDdl: () => this.invalidateCatalog(connection.name),
      }, socket);
      this.sessions.add(session);
      const timing = this.tunnelTiming();
      watchTunnel(ws, req.socket, timing, (silentMs) => session.lostTunnel(silentMs, timing.timeoutMs));
    });
  }

  /**
   * The session's way to a pooled upstream connection, under the policy in force when the session
   * starts (pool settings, session ceiling); nothing when the connection's pooling is off.
   */
  private poolFor(connection: ConnectionPolicy, metrics: ConnectionMetrics): Pick<SessionOptions, 'lease'> {
    const now = this.policy.connections.get(connection.name) ?? connection;
    const settings = poolSettings(now.pool, this.policy.limits, now.maxSessions);
    if (!settings) return {};
    const waitMs = this.policy.limits.upstreamConnectTimeoutMs;
    return {
      lease: (target, params) => this.pools.acquire(connection.name, target, settings, {
        params, waitMs, timeOpen: (p) => metrics.upstreamConnect(p),
      }),
    };
  }

  /** The catalog of a connection (created on first use); its first load also checks the upstream role. */
  private catalogFor(connection: ConnectionPolicy): CatalogCache {
    let cache = this.catalogs.get(connection.name);
    if (!cache) {
      cache = new CatalogCache(() => this.targetFor(connection), this.opts.log, connection.name);
      this.catalogs.set(connection.name, cache);
      // DDL made outside the gateway reaches masking and write rules within the watch's interval.
      cache.watch();
      void cache.ready().then(() => this.checkUpstreamRole(connection));
    }
    return cache;
  }

  /**
   * Masking for this reader on this connection (nothing when the policy masks nothing or the reader
   * is unmasked), and the catalog every session's gate reads (what writes reach through views,
   * rules, triggers, partitions and functions), which the session waits for at startup.
   */
  private maskingFor(
    identity: Identity, connection: ConnectionPolicy,
  ): Pick<SessionOptions, 'masking' | 'maskedColumns' | 'maskingReady' | 'recordingMasking' | 'catalog' | 'source' | 'analyze'> {
    const c = this.catalogFor(connection);
    const pool = this.analysis;
    // The worker reads the snapshot current when the job is sent, as the inline path would.
    const analyze = (req: AnalysisRequest): Promise<TextAnalysis> => pool.analyze(req, { snapshot: c.current });
    const base = { maskingReady: () => c.ready(), catalog: () => c.current, analyze };
    const config = this.policy.masking;
    // The same facts `phigate policy test` decides with (gateMasking).
    const { maskedColumns, maskedReader } = gateMasking(config, identity.groups);
    if (maskedColumns === undefined) return base;
    const ctx = { config, tokenKey: this.tokenKey(), catalog: () => c.current };
    // Unmasked readers see raw values; their recordings are masked all the same.
    if (!maskedReader) return { ...base, maskedColumns, recordingMasking: ctx };
    const entry = this.sourceMaskingFor(connection.name);
    if (entry === undefined) return { ...base, masking: ctx, maskedColumns };
    const { setup, spec } = entry;
    const source: SourceMaskingHandle = {
      rewrite: (sql, allowUnknown, plainOutputs) => setup.masking.rewrite(sql, c.current, { allowUnknown, plainOutputs }),
      refresh: async (since) => (await c.refreshAfter(since)).takenAt >= since,
    };
    return {
      ...base, masking: { ...ctx, secrets: setup.secrets }, maskedColumns, source,
      analyze: (req) => pool.analyze(req, { spec, snapshot: c.current }),
    };
  }

  /**
   * Masking at the source for a connection under the policy in force (one per policy: its caches
   * hold rewrites of that policy's masking); none when the policy masks no column.
   */
  private sourceMaskingFor(connection: string): { setup: SourceMaskingSetup; spec: SourceMaskingSpec } | undefined {
    const policy = this.policy;
    if (policy.masking.columns.length === 0) return undefined;
    let entry = this.sourceMaskings.get(connection);
    if (entry === undefined || entry.policy !== policy) {
      const allowed = new Set(policy.functions.filter((f) => f.maskedReaders).map((f) => (f.schema === undefined ? f.name : `${f.schema}.${f.name}`)));
      // The analysis worker builds the same masking from the same three things.
      const spec: SourceMaskingSpec = { config: policy.masking, tokenKey: this.tokenKey(), allowed: [...allowed] };
      entry = { policy, setup: createSourceMasking(spec.config, spec.tokenKey, allowed), spec };
      this.sourceMaskings.set(connection, entry);
    }
    return entry;
  }

  /** Checks every connection's upstream role (at start); a connection that cannot be reached is checked when its catalog first loads. */
  private checkUpstreamRoles(): void {
    for (const connection of this.policy.connections.values()) void this.checkUpstreamRole(connection);
  }

  /** Logs one warning per connection whose upstream role can reach the server's files or programs. */
  private async checkUpstreamRole(connection: ConnectionPolicy): Promise<void> {
    const name = connection.name;
    if (this.roleChecks.has(name) || this.stopped) return;
    this.roleChecks.add(name);
    try {
      const p = await checkUpstreamPrivileges(this.targetFor(connection));
      const warning = privilegeWarning(name, p);
      if (warning) this.opts.log.warn(warning.message, warning.fields);
      else this.opts.log.info('upstream role holds no server-access privileges', { connection: name, role: p.role });
    } catch (err) {
      // Not reachable now (or misconfigured): checked again when the connection's catalog first loads.
      this.roleChecks.delete(name);
      this.opts.log.debug('could not check the upstream role', { connection: name, error: (err as Error).message });
    }
  }

  /** Where a connection's database is, with the policy's upstream_connect_timeout unless the target sets its own. */
  private targetFor(connection: ConnectionPolicy): UpstreamTarget {
    const target = (this.opts.resolveTarget ?? resolveUpstreamTarget)(connection);
    return { ...target, connectTimeoutMs: target.connectTimeoutMs ?? this.policy.limits.upstreamConnectTimeoutMs };
  }

  private tokenKey(): Buffer {
    if (!this.maskingKey) {
      if (this.opts.maskingKey) {
        this.maskingKey = this.opts.maskingKey;
      } else if (this.opts.dataDir) {
        this.maskingKey = loadOrCreateTokenKey(this.opts.dataDir);
      } else {
        // Without a data directory tokens are stable only for this process's lifetime.
        this.maskingKey = randomBytes(32);
        this.opts.log.warn('masking tokens are not stable across restarts: no --data-dir for the tokenization key');
      }
    }
    return this.maskingKey;
  }

  /** After DDL through any session: the catalog may have changed. */
  invalidateCatalog(connection: string): void {
    this.catalogs.get(connection)?.invalidate();
  }

  /** Authenticates and checks allow_groups; for tunnels (`needGrant`) also a just-in-time grant. */
  private async admit(req: IncomingMessage, name: string, needGrant = true): Promise<{ identity: Identity; connection: ConnectionPolicy }> {
    const identity = await this.authenticate(req);
    const connection = this.policy.connections.get(name);
    if (!connection) {
      throw new Refused('unknown_connection', `no connection named "${name}" (see \`phigate connections\`)`, identity.subject);
    }
    const access = decideConnectionAccess(identity.groups, connection);
    if (!access.allowed) throw new Refused('forbidden', `${identity.name}: ${access.reason}`, identity.subject);
    if (needGrant && AccessGrants.required(identity, connection) && !(await this.activeGrant(identity, name))) {
      throw new Refused('access_required', `${identity.name} needs approved access to "${name}" first (approvers: ${connection.accessApproval?.approvers.join(', ')})`, identity.subject);
    }
    return { identity, connection };
  }

  /** A policy an admin applied on another replica: in force here too, unless it is invalid here. */
  private applyPublished(p: PublishedPolicy): void {
    try {
      const { changed } = this.activatePolicy(p.text, 'replica', p.by);
      if (!changed) this.opts.log.debug('policy from another replica already in force', { version: p.version });
    } catch (err) {
      if (!(err instanceof PolicyFileError)) throw err;
      this.opts.log.error('a policy applied on another replica is invalid here; the current one stays', { version: p.version, by: p.by, error: err.message });
    }
  }

  /** What the evidence endpoints read from the shared store: every replica's chain. */
  private sharedEvidence(db: SharedDatabase, shipper: AuditShipper): NonNullable<AuditRoutesDeps['shared']> {
    const publicKey = createPublicKey(this.signingKey!);
    return {
      chain: shipper.chain,
      evidence: new SharedEvidence(db),
      flush: () => shipper.flush(),
      verify: () => verifySharedChains(db, { chain: shipper.chain, publicKey }),
      exportPlan: (chain, range) => planSharedExport(db, chain, range),
    };
  }

  /** The grant in force; a shared store that cannot be read refuses the tunnel (fail closed), saying why. */
  private async activeGrant(identity: Identity, connection: string): Promise<AccessGrant | undefined> {
    try {
      return await this.access.active(identity, connection);
    } catch (err) {
      this.opts.log.error('access grants could not be read', { connection, error: (err as Error).message });
      throw new Refused('unavailable', `cannot check ${identity.name}'s access to "${connection}": the shared store is unavailable`, identity.subject);
    }
  }

  /** A grant ran out: end that identity's live sessions on the connection, saying why. */
  private onAccessExpired(g: AccessGrant): void {
    this.opts.log.info('access expired', { grant: g.id, subject: g.subject, connection: g.connection });
    this.record({ type: 'access.expired', grant: g.id, user: g.subject, connection: g.connection });
    const at = new Date(g.expiresAt).toISOString();
    for (const s of this.sessions) {
      const { identity, connection } = s.opts;
      if (identity.subject === g.subject && identity.issuer === g.issuer && connection.name === g.connection) {
        s.terminate('57P01', `phigate: access to "${g.connection}" expired at ${at} (grant ${g.id}); request access again to continue`);
      }
    }
  }

  private async authenticate(req: IncomingMessage): Promise<Identity> {
    if (!this.verifier) throw new Refused('unavailable', 'the gateway is still starting');
    try {
      return await this.verifier.verify(bearerToken(req.headers.authorization));
    } catch (err) {
      if (err instanceof AuthError) {
        throw new Refused(err.code === 'issuer_unavailable' ? 'unavailable' : 'unauthenticated', err.message);
      }
      throw err;
    }
  }

  /**
   * A token anywhere but the Authorization header refuses the request, before any route sees it.
   * The dev issuer's own OIDC endpoints are exempt: the protocol puts tokens in forms there.
   */
  private misplacedToken(req: IncomingMessage, url: URL): Refused | undefined {
    if (this.devIssuer && (url.pathname === DEV_MOUNT || url.pathname.startsWith(`${DEV_MOUNT}/`))) return undefined;
    const where = misplacedToken(url, req.headers);
    return where === undefined ? undefined : new Refused('token_misplaced', misplacedTokenMessage(where));
  }

}

export function verifierFor(policy: PolicyFile, extra: IssuerConfig[] = []): TokenVerifier {
  const issuers: IssuerConfig[] = [
    ...policy.issuers.map((i) => ({
      issuer: i.issuer, audience: i.audience, groupsClaim: i.groupsClaim, jwksUri: i.jwksUri, ownerClaim: i.ownerClaim, serviceOwners: i.serviceOwners, serviceTokens: i.serviceTokens,
    })),
    ...extra,
  ];
  // Plain-http issuers are trusted only on loopback (tests, dev mode); anywhere else tokens need TLS.
  const allowHttp = issuers.every((i) => !i.issuer.startsWith('http:') || isLoopbackHost(new URL(i.issuer).hostname));
  return new TokenVerifier(issuers, { allowHttp });
}


function boundPort(server: Server, fallback: number): number {
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : fallback;
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
