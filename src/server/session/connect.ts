// The connect phase of a session: the upstream target, this replica's session limits (admission),
// then a pooled connection or a new one, and the masking catalog's first snapshot. What it learns
// goes to the core (upstreamReady, refuse, fatal); the socket stays with the shell.
import type { Socket } from 'node:net';
import type { ErrorFields } from '../../pg/index.js';
import { connectUpstream, cancelUpstream, UpstreamError, type UpstreamSession, type UpstreamTarget } from '../upstream.js';
import { upstreamFailure } from '../upstream-fault.js';
import { PoolWaitTimeout, type UpstreamLease } from '../pool/pool.js';
import { AdmissionTicket, type LimitRefusal } from '../admission.js';
import { NO_METRICS } from '../metrics.js';
import { CloseCode } from '../../tunnel/protocol.js';
import type { SessionCore } from './core.js';
import type { SessionOptions } from './options.js';
import { TERMINATE } from './wire.js';

/** What the connect phase reads and sets on the shell. */
export interface Connecting {
  readonly core: SessionCore;
  readonly opts: SessionOptions<never>;
  upstream?: Socket;
  lease?: UpstreamLease;
  slot?: AdmissionTicket;
  connectPending: boolean;
  upstreamCancel?: () => Promise<void>;
  clientKey?: { processId: number; secretKey: Buffer };
  cancel(): Promise<void>;
  drain(): void;
}

/** Starts connecting with the parameters the client's startup packet forwards (startup.ts). */
export function openUpstream(s: Connecting, forwarded: Record<string, string>): void {
  const { log, connection } = s.opts;
  const metrics = s.opts.metrics ?? NO_METRICS;
  let target: UpstreamTarget;
  try {
    target = s.opts.resolveTarget(connection);
  } catch (err) {
    const e = err as UpstreamError;
    metrics.upstreamFailed('config');
    log.error('upstream target unavailable', { session: s.core.id, connection: connection.name, error: e.message });
    s.core.fatal('08001', `phigate: ${e.message}`, CloseCode.UpstreamFailed);
    return;
  }
  const ticket = s.opts.admit?.();
  if (ticket !== undefined && !(ticket instanceof AdmissionTicket)) {
    refuseLimit(s, ticket);
    return;
  }
  s.slot = ticket;
  const open = (): void => connect(s, target, forwarded);
  if (ticket) {
    ticket.whenConnectSlot(open, (r) => {
      refuseLimit(s, r);
      s.drain();
    }, s.opts.connectWaitMs ?? 10_000);
  } else open();
}

/** Over one of this replica's session limits: 53300, naming the limit, its value and its key. */
function refuseLimit(s: Connecting, r: LimitRefusal): void {
  s.core.refuse({
    severity: 'FATAL', code: '53300', message: `phigate: ${r.message}`,
    hint: `end sessions you no longer need, or ask the operator to raise ${r.key}`,
  }, CloseCode.Refused, r.key);
}

function connect(s: Connecting, target: UpstreamTarget, forwarded: Record<string, string>): void {
  const core = s.core;
  if (core.state !== 'connecting') return;
  const { log, connection, identity } = s.opts;
  const params = core.clientParams;
  log.info('session start', {
    session: core.id, connection: connection.name, subject: identity.subject, name: identity.name, kind: identity.kind,
    label: s.opts.label, client_user: params['user'], client_database: params['database'],
    application_name: params['application_name'], remote: s.opts.remoteAddress,
  });
  s.connectPending = true;
  const metrics = s.opts.metrics ?? NO_METRICS;
  // maskingReady never rejects (a catalog that cannot be read is retried); caught so a connected socket is never dropped unclosed.
  const lease = s.opts.lease;
  const connecting = lease
    ? lease(target, forwarded).then((l) => {
      s.lease = l;
      return l.upstream;
    })
    : metrics.upstreamConnect(connectUpstream(target, forwarded));
  Promise.all([connecting, s.opts.maskingReady?.().catch(() => {})]).then(
    ([up]) => {
      s.connectPending = false;
      s.slot?.connected();
      ready(s, up, target);
      s.drain();
    },
    (err: unknown) => {
      s.connectPending = false;
      s.slot?.connected();
      failed(s, err, target);
      s.drain();
    },
  );
}

function failed(s: Connecting, err: unknown, target: UpstreamTarget): void {
  const { log, connection } = s.opts;
  const closed = s.core.state === 'closed';
  if (err instanceof PoolWaitTimeout) {
    log.warn('no pooled upstream connection came free', { session: s.core.id, connection: connection.name, size: err.size });
    if (closed) s.slot?.release();
    else {
      const fields: ErrorFields = {
        severity: 'FATAL', code: '53300', message: `phigate: ${err.message}`, hint: `try again shortly, or ask the operator to raise connections.${connection.name}.pool.size`,
      };
      s.core.refuse(fields, CloseCode.Refused, `connections.${connection.name}.pool.size`);
    }
    return;
  }
  const e = err instanceof UpstreamError ? err : new UpstreamError('protocol', '08P01', String(err));
  log.error('upstream connect failed', { session: s.core.id, connection: connection.name, kind: e.kind, sqlstate: e.sqlstate, error: e.message });
  if (closed) s.slot?.release();
  else s.core.refuse(upstreamFailure(connection.name, e, target.user), CloseCode.UpstreamFailed);
}

function ready(s: Connecting, up: UpstreamSession, target: UpstreamTarget): void {
  const core = s.core;
  if (core.state !== 'connecting' && s.lease) {
    // The client left while connecting: nothing was sent on the pooled connection.
    s.lease.release({ quiet: true, status: 'I' });
    s.slot?.release();
    return;
  }
  if (core.state !== 'connecting') {
    // The client left while connecting: say goodbye, and give the slot back once the backend is gone.
    const sock = up.socket;
    sock.once('close', () => s.slot?.release());
    sock.on('error', () => {});
    sock.end(TERMINATE);
    sock.setTimeout(5_000, () => sock.destroy());
    return;
  }
  s.upstream = up.socket;
  const lease = s.lease;
  s.upstreamCancel = lease ? () => lease.cancel() : () => cancelUpstream(target, up.backendKey);
  const { identity } = s.opts;
  s.clientKey = s.opts.cancels.register({ sessionId: core.id, subject: identity.subject, issuer: identity.issuer, cancel: () => s.cancel() });
  core.upstreamReady({
    parameters: up.parameters, transactionStatus: up.transactionStatus, notices: up.notices, leftover: up.leftover,
    pooled: lease !== undefined, clientKey: s.clientKey,
  });
}
