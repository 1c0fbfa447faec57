// Resolves what every networked command needs: the gateway URL and the bearer token to present.
// Until `phigate login` lands the token comes from PHIGATE_TOKEN or --token-file (read on every use,
// so a rotated workload token, e.g. a Kubernetes projected token, is picked up).
import { readFileSync } from 'node:fs';
import { ExitCode, PhigateError } from './errors.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:7432';

export interface GlobalOptions {
  server?: string;
  tokenFile?: string;
  profile?: string;
}

export interface CliContext {
  serverUrl: string;
  token: () => string;
}

export function resolveContext(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): CliContext {
  const raw = opts.server ?? env['PHIGATE_SERVER'] ?? DEFAULT_SERVER;
  let serverUrl: string;
  try {
    const u = new URL(raw);
    if (!['http:', 'https:'].includes(u.protocol)) throw new Error('scheme');
    serverUrl = u.toString().replace(/\/$/, '');
  } catch {
    throw new PhigateError(`invalid server URL "${raw}"`, ExitCode.Usage, 'expected http(s)://host:port');
  }
  const tokenFile = opts.tokenFile;
  const token = (): string => {
    if (tokenFile) {
      let t: string;
      try {
        t = readFileSync(tokenFile, 'utf8').trim();
      } catch (err) {
        throw new PhigateError(`cannot read token file ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? err}`,
          ExitCode.NotAuthenticated);
      }
      if (!t) throw new PhigateError(`token file ${tokenFile} is empty`, ExitCode.NotAuthenticated);
      return t;
    }
    const t = env['PHIGATE_TOKEN']?.trim();
    if (t) return t;
    throw new PhigateError('not authenticated: no token', ExitCode.NotAuthenticated,
      'set PHIGATE_TOKEN or pass --token-file FILE');
  };
  return { serverUrl, token };
}

/** ws:// or wss:// URL for a path on the gateway. */
export function wsUrl(serverUrl: string, path: string): string {
  return serverUrl.replace(/^http/, 'ws') + path;
}
