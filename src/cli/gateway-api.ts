// Authenticated JSON GETs against the gateway's HTTP API for the identity commands (whoami,
// connections), with refusals mapped to exit codes and hints that point at `phigate login`.
import { ExitCode, PhigateError } from './errors.js';
import { refusalError, unreachableError } from '../tunnel/refusal.js';
import type { CliContext } from './context.js';

export async function gatewayGet<T>(ctx: Pick<CliContext, 'serverUrl' | 'source'>, path: string, token: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${ctx.serverUrl}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw unreachableError(ctx.serverUrl, err);
  }
  const body = await res.text();
  if (!res.ok) {
    const e = refusalError(res.status, body);
    if (e.exitCode === ExitCode.NotAuthenticated) {
      throw new PhigateError(e.message, e.exitCode, ctx.source === 'stored'
        ? 'run `phigate login` to log in again'
        : `the token from ${ctx.source === 'env' ? 'PHIGATE_TOKEN' : '--token-file'} is not valid for this gateway; unset it to use your login`);
    }
    throw e;
  }
  try {
    return JSON.parse(body) as T;
  } catch {
    throw new PhigateError(`${ctx.serverUrl}${path} answered something that is not JSON; is this a phigate gateway?`, ExitCode.Error);
  }
}
