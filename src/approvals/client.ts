// CLI side of the approvals API: list, decide, and a live stream that reconnects by itself (with a
// fresh token) until closed. Every failure becomes a PhigateError with the exit code docs/engineer.md lists.
import { errnoOf } from '../common/errors.js';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { ExitCode, PhigateError } from '../cli/errors.js';
import { wsUrl, type TokenSource } from '../cli/context.js';
import { refusalError, unreachableError } from '../tunnel/refusal.js';
import {
  APPROVALS_PATH, APPROVALS_STREAM_PATH, approvalPath,
  type ApiError, type ApprovalListResponse, type ApprovalView, type DecisionBody, type StreamMessage,
} from './api.js';

export interface ApprovalsClientOptions {
  serverUrl: string;
  token: () => Promise<string>;
  /** Where the token came from, for the hint when the gateway does not accept it. */
  source: TokenSource;
}

export type StreamState =
  | { state: 'connecting' }
  | { state: 'live' }
  | { state: 'reconnecting'; reason: string; inMs: number }
  /** Given up: retrying cannot help (not authenticated, not an approvals gateway). */
  | { state: 'failed'; error: PhigateError };

export interface StreamHandlers {
  onMessage(msg: StreamMessage): void;
  onState(s: StreamState): void;
}

const EXIT: Partial<Record<ApiError['error'], ExitCode>> = {
  not_an_approver: ExitCode.Denied,
  self_approval: ExitCode.Denied,
  unowned_service: ExitCode.Denied,
  reason_required: ExitCode.Usage,
  not_found: ExitCode.Error,
  already_decided: ExitCode.Error,
  bad_request: ExitCode.Usage,
};

const HINT: Partial<Record<ApiError['error'], string>> = {
  not_an_approver: 'only members of the rule\'s approver groups may decide it (`phigate whoami` shows your groups)',
  self_approval: 'ask another member of the approver groups to decide it',
  unowned_service: 'log in as yourself (`phigate login`) to decide requests',
  reason_required: 'say why: phigate approve ID --reason TEXT (the requester sees it; it is recorded)',
  not_found: 'run `phigate approvals --all` to list current and recent requests',
  already_decided: 'run `phigate approvals --all` to see how it ended',
};

export class ApprovalsClient {
  constructor(private readonly opts: ApprovalsClientOptions) {}

  get serverUrl(): string {
    return this.opts.serverUrl;
  }

  list(all = false): Promise<ApprovalListResponse> {
    return this.call<ApprovalListResponse>('GET', `${APPROVALS_PATH}${all ? '?all=1' : ''}`);
  }

  get(id: string): Promise<ApprovalView> {
    return this.call<ApprovalView>('GET', approvalPath(id));
  }

  decide(id: string, approve: boolean, body: DecisionBody = {}): Promise<ApprovalView> {
    return this.call<ApprovalView>('POST', approvalPath(id, approve ? 'approve' : 'deny'), body);
  }

  /** Opens the live stream; reconnects with backoff (and a fresh token) until `close()`. */
  stream(handlers: StreamHandlers, opts: { all?: boolean } = {}): { close(): void } {
    let closed = false;
    let ws: WebSocket | undefined;
    let retry: NodeJS.Timeout | undefined;
    let failures = 0;
    const url = wsUrl(this.opts.serverUrl, `${APPROVALS_STREAM_PATH}${opts.all ? '?all=1' : ''}`);

    const again = (reason: string): void => {
      if (closed) return;
      const inMs = Math.min(10_000, 500 * 2 ** Math.min(failures, 5));
      failures++;
      handlers.onState({ state: 'reconnecting', reason, inMs });
      retry = setTimeout(connect, inMs);
    };
    const fail = (error: PhigateError): void => {
      if (closed) return;
      closed = true;
      handlers.onState({ state: 'failed', error });
    };

    const connect = async (): Promise<void> => {
      if (closed) return;
      handlers.onState({ state: 'connecting' });
      let token: string;
      try {
        token = await this.opts.token();
      } catch (err) {
        return fail(err instanceof PhigateError ? err : new PhigateError(String(err), ExitCode.NotAuthenticated));
      }
      if (closed) return;
      const sock = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, handshakeTimeout: 15_000 });
      ws = sock;
      let refused = false;
      sock.on('open', () => {
        failures = 0;
        handlers.onState({ state: 'live' });
      });
      sock.on('message', (data) => {
        let msg: StreamMessage;
        try {
          msg = JSON.parse(data.toString()) as StreamMessage;
        } catch {
          return;
        }
        handlers.onMessage(msg);
      });
      sock.on('unexpected-response', (_req, res: IncomingMessage) => {
        refused = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const err = this.errorFor(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
          sock.terminate();
          // Only an unavailable gateway may get better by itself.
          if (err.exitCode === ExitCode.Unreachable) again(err.message);
          else fail(err);
        });
      });
      sock.on('error', (err) => {
        if (refused) return;
        const code = errnoOf(err);
        sock.terminate();
        if (!closed && ws === sock) {
          ws = undefined;
          again(`gateway unreachable${code ? ` (${code})` : ''}`);
        }
      });
      sock.on('close', (code, reason) => {
        if (refused || ws !== sock) return;
        ws = undefined;
        // 4401: the token that opened the stream expired; the next attempt fetches a renewed one.
        again(code === 4401 ? 'token expired; renewing' : `stream closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
      });
    };

    void connect();
    return {
      close() {
        closed = true;
        if (retry) clearTimeout(retry);
        ws?.close(1000);
        ws = undefined;
      },
    };
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const token = await this.opts.token();
    let res: Response;
    try {
      res = await fetch(`${this.opts.serverUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw unreachableError(this.opts.serverUrl, err);
    }
    const text = await res.text();
    if (!res.ok) throw this.errorFor(res.status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new PhigateError(`${this.opts.serverUrl}${path} answered something that is not JSON; is this a phigate gateway?`, ExitCode.Error);
    }
  }

  /** The gateway's answer as the error a user can act on. */
  errorFor(status: number, text: string): PhigateError {
    let body: Partial<ApiError> = {};
    try {
      body = JSON.parse(text) as Partial<ApiError>;
    } catch {
      // not JSON: handled below by status
    }
    const code = body.error;
    if (code && typeof body.message === 'string' && EXIT[code] !== undefined) {
      return new PhigateError(body.message, EXIT[code], HINT[code]);
    }
    if (status === 404 && !code) {
      return new PhigateError(`${this.opts.serverUrl} has no approvals API`, ExitCode.Error, 'is this gateway older than the CLI? (`phigate --version`)');
    }
    const e = refusalError(status, text);
    if (e.exitCode === ExitCode.NotAuthenticated) {
      return new PhigateError(e.message, e.exitCode, this.opts.source === 'stored'
        ? 'run `phigate login` to log in again'
        : `the token from ${this.opts.source === 'env' ? 'PHIGATE_TOKEN' : '--token-file'} is not valid for this gateway; unset it to use your login`);
    }
    return e;
  }
}
