// Authenticated JSON calls to the gateway's HTTP API for the CLI's commands, with refusals mapped
// to exit codes and hints that point at `phigate login`.
import { ExitCode, PhigateError } from './errors.js';
import { refusalError, unreachableError } from '../tunnel/refusal.js';
import type { CliContext } from './context.js';

export async function gatewayGet<T>(ctx: Pick<CliContext, 'serverUrl' | 'source'>, path: string, token: string): Promise<T> {
  return gatewayRequest<T>(ctx, 'GET', path, token);
}

/** Any authenticated call; `body` is sent as is with `contentType`. */
export async function gatewayRequest<T>(
  ctx: Pick<CliContext, 'serverUrl' | 'source'>, method: string, path: string, token: string,
  body?: { text: string; contentType: string },
): Promise<T> {
  let res: Response;
  try {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body) headers['content-type'] = body.contentType;
    res = await fetch(`${ctx.serverUrl}${path}`, { method, headers, body: body?.text, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw unreachableError(ctx.serverUrl, err);
  }
  const text = await res.text();
  if (!res.ok) {
    const e = refusalError(res.status, text);
    if (e.exitCode === ExitCode.NotAuthenticated) {
      throw new PhigateError(e.message, e.exitCode, ctx.source === 'stored'
        ? 'run `phigate login` to log in again'
        : `the token from ${ctx.source === 'env' ? 'PHIGATE_TOKEN' : '--token-file'} is not valid for this gateway; unset it to use your login`);
    }
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new PhigateError(`${ctx.serverUrl}${path} answered something that is not JSON; is this a phigate gateway?`, ExitCode.Error);
  }
}
