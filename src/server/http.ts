// The HTTP plumbing every route module of the gateway shares: JSON answers, error answers from the
// error model (common/errors.ts), refusals of WebSocket upgrades, bounded request bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { PhigateError, problemOf, type ErrorCode } from '../common/errors.js';
import type { RefusalCode } from '../tunnel/protocol.js';
import type { Identity } from '../auth/index.js';
import { pathOf, type Logger } from '../common/log.js';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Answers `err` with its code's status and `{ error, message, hint? }`. */
export function sendProblem(res: ServerResponse, err: PhigateError): void {
  sendJson(res, err.status, problemOf(err));
}

/** Answers with a new error of `code`; true (answered), so a route can `return sendError(...)`. */
export function sendError(res: ServerResponse, code: ErrorCode, message: string): true {
  sendProblem(res, new PhigateError(message, code));
  return true;
}

/** Answers an upgrade request on its raw socket (no WebSocket was made) and closes it. */
export function writeRefusal(socket: Duplex, err: PhigateError): void {
  const text = JSON.stringify(problemOf(err));
  const status = err.status;
  const reason = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
      `Cache-Control: no-store\r\nConnection: close\r\n\r\n${text}`,
  );
}

/**
 * The request body as text, at most `limit` bytes; a larger one is refused with `code` (the
 * approvals API has always said 400 bad_request, the policy endpoint 413 too_large).
 */
export async function readBody(req: IncomingMessage, limit: number, code: ErrorCode = 'too_large'): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new PhigateError(`request body is larger than ${limit} bytes`, code);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A request header's first value, cut to 200 characters (labels and reasons, never trusted for size). */
export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined ? undefined : s.slice(0, 200);
}

/** The gateway's refusal of a request or tunnel, with the identity it refused (for the log, never the answer). */
export class Refused extends PhigateError {
  constructor(
    code: RefusalCode,
    message: string,
    readonly subject?: string,
    /** Overrides the CLI's usual hint for the code. */
    hint?: string,
  ) {
    super(message, code, hint);
    this.name = 'Refused';
  }
}

/** Logs a refusal (paths only: a query string may carry a token), with whom it refused when known. */
export function logRefusal(log: Logger | undefined, req: IncomingMessage, err: PhigateError, connection?: string): void {
  log?.warn('access refused', {
    code: err.code, reason: err.message, connection, subject: err instanceof Refused ? err.subject : undefined,
    remote: req.socket.remoteAddress, path: pathOf(req.url),
  });
}

/** Logs and answers a refusal; true (answered). */
export function refuse(log: Logger | undefined, req: IncomingMessage, res: ServerResponse, err: PhigateError): true {
  logRefusal(log, req, err);
  sendProblem(res, err);
  return true;
}

/**
 * The caller's identity, or undefined once its refusal has been answered. `authenticate` refuses with
 * a PhigateError; anything else is a bug and goes on to the 500 handler.
 */
export async function authenticated(
  authenticate: (req: IncomingMessage) => Promise<Identity>, log: Logger | undefined, req: IncomingMessage, res: ServerResponse,
): Promise<Identity | undefined> {
  try {
    return await authenticate(req);
  } catch (err) {
    if (!(err instanceof PhigateError)) throw err;
    refuse(log, req, res, err);
    return undefined;
  }
}
