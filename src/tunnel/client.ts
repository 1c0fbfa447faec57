// CLI side of the tunnel: a preflight check, and one WebSocket stream per local client connection
// that moves bytes unchanged in both directions with backpressure. It does not interpret PostgreSQL,
// except to hand a waiting client one ErrorResponse when the gateway refuses or cannot be reached.
import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { CONNECTIONS_PATH, HEADER_CLIENT, HEADER_REASON, HEADER_SESSION_LABEL, isRefusalCode, tunnelPath, type ControlMessage, type PreflightResponse } from './protocol.js';
import { parseRefusal, refusalError, unreachableError } from './refusal.js';
import { parseLivenessHeader, roughly, watchTunnel, type LivenessTiming } from './liveness.js';
import { DataFrameWriter, maskingFor, writeFrame } from './frame.js';
import { wsUrl } from '../cli/context.js';
import { FrontendParser, errorResponse, sslNo } from '../pg/index.js';
import { PhigateError } from '../cli/errors.js';
import { ERROR_TABLE, REJECTED_CONNECTION } from '../common/errors.js';
import type { Progress } from '../ui/progress.js';

/** Queue this much towards the gateway before pausing the local client. */
const HIGH_WATER = 4 * 1024 * 1024;

export interface TunnelOptions {
  serverUrl: string;
  connection: string;
  /** Called for every stream: a stored login may renew itself in between. */
  token: () => Promise<string>;
  label?: string;
  reason?: string;
  /** How long a new local connection keeps retrying an unreachable gateway. */
  retryForMs?: number;
  /** Where the CLI tells its user what happened (stderr). */
  say: (line: string) => void;
  /** A progress line for a wait (a spinner on a terminal); default: the text as one `say` line. */
  wait?: (text: string) => Progress;
}

/** Starts a wait through opts.wait, or as plain `say` lines when the caller has no progress display. */
export function startWait(opts: Pick<TunnelOptions, 'say' | 'wait'>, text: string): Progress {
  if (opts.wait) return opts.wait(text);
  opts.say(text);
  return { update: (t) => opts.say(t), done: (final) => void (final !== undefined && opts.say(final)) };
}

export async function preflight(opts: Pick<TunnelOptions, 'serverUrl' | 'connection' | 'token'>): Promise<PreflightResponse> {
  const token = await opts.token();
  let res: Response;
  try {
    res = await fetch(`${opts.serverUrl}${CONNECTIONS_PATH}/${encodeURIComponent(opts.connection)}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw unreachableError(opts.serverUrl, err);
  }
  const body = await res.text();
  if (!res.ok) throw refusalError(res.status, body);
  return JSON.parse(body) as PreflightResponse;
}

/** Outcome of trying to open one stream. */
type OpenResult = { ws: WebSocket; socket: Socket; timing: LivenessTiming; frames: DataFrameWriter } | { refused: PhigateError } | { unreachable: Error };

async function openStream(opts: TunnelOptions): Promise<OpenResult> {
  let token: string;
  try {
    token = await opts.token();
  } catch (err) {
    return { refused: err as PhigateError };
  }
  return new Promise((resolve) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, [HEADER_CLIENT]: 'phigate-cli/0.1' };
    if (opts.label) headers[HEADER_SESSION_LABEL] = opts.label;
    if (opts.reason) headers[HEADER_REASON] = opts.reason;
    const url = wsUrl(opts.serverUrl, tunnelPath(opts.connection));
    const ws = new WebSocket(url, {
      headers,
      perMessageDeflate: false,
      handshakeTimeout: 15_000,
      maxPayload: 256 * 1024 * 1024,
    });
    ws.binaryType = 'nodebuffer';
    let settled = false;
    let timing = parseLivenessHeader({});
    let socket: Socket | undefined;
    ws.once('upgrade', (res: IncomingMessage) => {
      timing = parseLivenessHeader(res.headers);
      socket = res.socket;
    });
    ws.once('open', () => {
      settled = true;
      resolve({ ws, socket: socket!, timing, frames: new DataFrameWriter(maskingFor(url)) });
    });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        settled = true;
        resolve({ refused: refusalError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')) });
      });
      res.on('error', () => {
        settled = true;
        resolve({ refused: refusalError(res.statusCode ?? 0, '') });
      });
    });
    ws.once('error', (err) => {
      if (!settled) {
        settled = true;
        resolve({ unreachable: err });
      }
    });
  });
}

/**
 * Carries one accepted local socket through a new tunnel stream. Retries an unreachable gateway with
 * backoff (the server may be restarting); a refusal is final and reaches the client as an error.
 */
export async function carryThroughTunnel(local: Socket, opts: TunnelOptions): Promise<void> {
  local.setNoDelay(true);
  local.pause();
  let localGone = false;
  local.once('close', () => (localGone = true));
  local.on('error', () => {});
  const deadline = Date.now() + (opts.retryForMs ?? 30_000);
  let delay = 250;
  let retrying: Progress | undefined;
  for (;;) {
    const r = await openStream(opts);
    if (localGone) {
      retrying?.done();
      if ('ws' in r) r.ws.close();
      return;
    }
    if ('ws' in r) {
      retrying?.done('phigate: gateway is reachable again');
      pipe(local, r, opts);
      return;
    }
    if ('refused' in r) {
      retrying?.done();
      opts.say(`phigate: ${r.refused.message}`);
      failLocal(local, isRefusalCode(r.refused.code) ? ERROR_TABLE[r.refused.code].sqlstate : REJECTED_CONNECTION, r.refused.message);
      return;
    }
    if (Date.now() + delay > deadline) {
      retrying?.done();
      const e = unreachableError(opts.serverUrl, r.unreachable);
      opts.say(`phigate: ${e.message}`);
      failLocal(local, ERROR_TABLE.unreachable.sqlstate, e.message);
      return;
    }
    retrying ??= startWait(opts, `phigate: gateway unreachable at ${opts.serverUrl}; retrying`);
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 4_000);
  }
}

function pipe(local: Socket, stream: { ws: WebSocket; socket: Socket; timing: LivenessTiming; frames: DataFrameWriter }, opts: TunnelOptions): void {
  const { ws, socket, timing, frames } = stream;
  let wsPaused = false;
  /** The stream's end needs no further word: the CLI ended it itself, or already said why. */
  let saidWhy = false;
  let localPaused = false;
  // A held statement's "waiting for approval" line, until the gateway says or sends anything else.
  let holding: Progress | undefined;
  // Data frames go to the socket directly (ws.send costs an option object and a masking copy per
  // frame); ws's own writes (pong, close) are synchronous on the same socket, so the order holds.
  const resume = (): void => {
    localPaused = false;
    local.resume();
  };
  local.on('data', (chunk: Buffer) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const f = frames.frame(chunk);
    const pause = !localPaused && socket.writableLength + chunk.length > HIGH_WATER;
    if (pause) {
      localPaused = true;
      local.pause();
    }
    writeFrame(socket, f, pause ? resume : undefined);
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    holding?.done();
    holding = undefined;
    if (!isBinary) {
      holding = showControl(data, opts);
      return;
    }
    if (!local.write(data) && !wsPaused) {
      wsPaused = true;
      ws.pause();
      local.once('drain', () => {
        wsPaused = false;
        ws.resume();
      });
    }
  });
  local.on('end', () => {
    saidWhy = true;
    ws.close(1000);
  });
  local.on('close', () => {
    saidWhy = true;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
  });
  // The gateway pings too, but behind a large result a slow reader here cannot read its pings: the
  // CLI's own pings tell the gateway this end is alive; the gateway's tell this end it is.
  watchTunnel(ws, socket, timing, (silentMs) => {
    saidWhy = true;
    holding?.done();
    holding = undefined;
    opts.say(`phigate: no answer from the gateway at ${opts.serverUrl} for ${roughly(silentMs)}; ` +
      'closed the client connection (the gateway or the network to it is down)');
    ws.terminate();
    local.destroy();
  });
  ws.on('close', (code: number, reason: Buffer) => {
    holding?.done();
    holding = undefined;
    if (code >= 4000 && reason.length > 0) opts.say(`phigate: ${reason.toString('utf8').replace(/^phigate:\s*/, '')}`);
    // 1006: the connection dropped without a closing handshake (the gateway was killed, or a reset).
    else if (code === 1006 && !saidWhy) opts.say(`phigate: the tunnel to the gateway at ${opts.serverUrl} was cut; closed the client connection`);
    local.end();
  });
  ws.on('error', (err) => {
    saidWhy = true;
    opts.say(`phigate: tunnel error: ${err.message}`);
    local.destroy();
  });
  local.resume();
}

/** Shows a control message; a wait for approval becomes a progress line, returned to be ended. */
function showControl(data: Buffer, opts: TunnelOptions): Progress | undefined {
  let msg: ControlMessage;
  try {
    msg = JSON.parse(data.toString('utf8')) as ControlMessage;
  } catch {
    // unknown control frame from a newer server: ignore
    return undefined;
  }
  if (msg.type !== 'notice' && msg.type !== 'error') return undefined;
  if (msg.type === 'notice' && msg.message.startsWith('waiting for approval')) return startWait(opts, `phigate: ${msg.message}`);
  opts.say(`phigate: ${msg.message}`);
  return undefined;
}

/**
 * Answers a local client that is still in its startup phase with a FATAL error, then closes it.
 * libpq shows no text for an error sent in answer to its SSLRequest, so decline TLS first ('N') and
 * answer the StartupMessage that follows.
 */
function failLocal(local: Socket, code: string, message: string): void {
  const parser = new FrontendParser();
  const answer = errorResponse({ severity: 'FATAL', code, message });
  const timer = setTimeout(() => local.destroy(), 10_000);
  local.once('close', () => clearTimeout(timer));
  local.on('data', (chunk: Buffer) => {
    for (const msg of parser.push(chunk)) {
      if (msg.type === 'SSLRequest' || msg.type === 'GSSENCRequest') {
        local.write(sslNo());
        continue;
      }
      local.removeAllListeners('data');
      if (msg.type === 'CancelRequest') local.end();
      else local.end(answer);
      return;
    }
  });
  local.resume();
}

export { parseRefusal };
