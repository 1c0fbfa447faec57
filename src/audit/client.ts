// The CLI's side of the evidence endpoints: authenticated GETs returning JSON, text or a stream to
// a file, with the gateway's refusals mapped to exit codes (401 → 3, 403 → 4, unreachable → 5).
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ExitCode, PhigateError } from '../cli/errors.js';
import { refusalError, unreachableError } from '../tunnel/refusal.js';
import type { TokenSource } from '../cli/context.js';

export interface EvidenceClientOptions {
  serverUrl: string;
  token: () => Promise<string>;
  source: TokenSource;
  /** Long operations (verify, export of a large range) may take a while. */
  timeoutMs?: number;
}

export class EvidenceClient {
  constructor(private readonly opts: EvidenceClientOptions) {}

  async json<T>(path: string): Promise<T> {
    const res = await this.get(path);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new PhigateError(`${this.opts.serverUrl}${path} answered something that is not JSON; is this a phigate gateway?`, ExitCode.Error);
    }
  }

  /** The body as text, with the response headers. */
  async text(path: string): Promise<{ text: string; headers: Headers }> {
    const res = await this.get(path);
    return { text: await res.text(), headers: res.headers };
  }

  /** Streams the body into `file` (or stdout when file is undefined). */
  async download(path: string, file: string | undefined): Promise<Headers> {
    const res = await this.get(path);
    if (!res.body) throw new PhigateError(`${this.opts.serverUrl}${path} answered with no body`, ExitCode.Error);
    const body = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
    await pipeline(body, file ? createWriteStream(file, { mode: 0o600 }) : process.stdout);
    return res.headers;
  }

  private async get(path: string): Promise<Response> {
    const token = await this.opts.token();
    let res: Response;
    try {
      res = await fetch(`${this.opts.serverUrl}${path}`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 120_000),
      });
    } catch (err) {
      throw unreachableError(this.opts.serverUrl, err);
    }
    if (!res.ok) {
      const e = refusalError(res.status, await res.text());
      if (e.exitCode === ExitCode.NotAuthenticated) {
        throw new PhigateError(e.message, e.exitCode, this.opts.source === 'stored'
          ? 'run `phigate login` to log in again'
          : `the token from ${this.opts.source === 'env' ? 'PHIGATE_TOKEN' : '--token-file'} is not valid for this gateway; unset it to use your login`);
      }
      if (e.exitCode === ExitCode.Denied) {
        throw new PhigateError(e.message, e.exitCode, 'ask an administrator to add you to one of the policy\'s identity.auditor_groups');
      }
      throw e;
    }
    return res;
  }
}
