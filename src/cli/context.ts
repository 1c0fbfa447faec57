// Resolves what every networked command needs: the gateway URL, the profile, and where the bearer
// token comes from: --token-file (re-read on every use, so a rotated workload token such as a
// Kubernetes projected token is picked up), else PHIGATE_TOKEN, else the login stored for
// (server, profile), renewed automatically before it expires.
import { errnoOf } from '../common/errors.js';
import { readFileSync } from 'node:fs';
import { ExitCode, PhigateError } from './errors.js';
import { DEFAULT_SERVER, savedServer } from './credentials/config.js';
import { phigateHome } from './credentials/paths.js';
import { DEFAULT_PROFILE } from './credentials/types.js';
import { CredentialVault } from './credentials/vault.js';
import { TokenManager, type TokenManagerOptions, type VaultAccess } from './credentials/token-manager.js';

export { DEFAULT_SERVER };

export interface GlobalOptions {
  server?: string;
  tokenFile?: string;
  profile?: string;
}

export type TokenSource = 'token-file' | 'env' | 'stored';

export interface CliContext {
  serverUrl: string;
  profile: string;
  /** PHIGATE_HOME */
  home: string;
  source: TokenSource;
  /** A token to present now; async because a stored login may need renewing first. */
  token: () => Promise<string>;
  /** Set when source is 'stored'. */
  tokens?: TokenManager;
}

/** Seams for tests: a vault over fake stores, a fake clock, a fake issuer. */
export interface ContextDeps {
  vault?: VaultAccess;
  now?: () => number;
  renew?: TokenManagerOptions['renew'];
}

export function normalizeServerUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (!['http:', 'https:'].includes(u.protocol)) throw new Error('scheme');
    return u.toString().replace(/\/$/, '');
  } catch {
    throw new PhigateError(`invalid server URL "${raw}"`, ExitCode.Usage, 'expected http(s)://host:port');
  }
}

export function resolveProfile(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  return opts.profile?.trim() || env['PHIGATE_PROFILE']?.trim() || DEFAULT_PROFILE;
}

/** --server, else PHIGATE_SERVER, else the server of the profile's last login, else the local default. */
export function resolveServer(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  const profile = resolveProfile(opts, env);
  const raw = opts.server || env['PHIGATE_SERVER'] || savedServer(phigateHome(env), profile) || DEFAULT_SERVER;
  return normalizeServerUrl(raw);
}

export function resolveContext(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env, deps: ContextDeps = {}): CliContext {
  const serverUrl = resolveServer(opts, env);
  const profile = resolveProfile(opts, env);
  const home = phigateHome(env);
  const tokenFile = opts.tokenFile;
  if (tokenFile) {
    return { serverUrl, profile, home, source: 'token-file', token: async () => readTokenFile(tokenFile) };
  }
  const envToken = env['PHIGATE_TOKEN']?.trim();
  if (envToken) return { serverUrl, profile, home, source: 'env', token: async () => envToken };
  const tokens = new TokenManager({
    server: serverUrl,
    profile,
    vault: deps.vault ?? new CredentialVault({ home }),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.renew ? { renew: deps.renew } : {}),
    ...(env['PHIGATE_DEBUG'] ? { debug: (line: string) => void process.stderr.write(`phigate debug: ${line}\n`) } : {}),
  });
  return { serverUrl, profile, home, source: 'stored', tokens, token: () => tokens.accessToken() };
}

function readTokenFile(tokenFile: string): string {
  let t: string;
  try {
    t = readFileSync(tokenFile, 'utf8').trim();
  } catch (err) {
    throw new PhigateError(`cannot read token file ${tokenFile}: ${errnoOf(err) ?? err}`,
      ExitCode.NotAuthenticated, 'check the --token-file path; it is read again on every use');
  }
  if (!t) throw new PhigateError(`token file ${tokenFile} is empty`, ExitCode.NotAuthenticated);
  return t;
}

/** ws:// or wss:// URL for a path on the gateway. */
export function wsUrl(serverUrl: string, path: string): string {
  return serverUrl.replace(/^http/, 'ws') + path;
}
