// Hands out a valid access token for a stored login, renewing it shortly before it expires: with the
// refresh token (device-code logins) or the kept client secret (client-credentials logins). One
// renewal at a time per process (single-flight) and per machine (lock file), so 50 tunnel streams
// opening at once cause one request to the issuer.
import { ExitCode, PhigateError } from '../errors.js';
import { CredentialLockBusy, withCredentialLock } from './lock.js';
import { credentialKey, type SecretStore, type StoredCredential } from './types.js';
import type { Loaded } from './vault.js';
import { DEFAULT_SERVER } from './config.js';
import { clientCredentialsTokens, isOAuthError, issuerConfig, issuerError, refreshTokens, type Tokens } from './issuer.js';

/** Renew when less than this much of the token's life is left: 10 % of it, at most 60 s. */
export function renewalMarginMs(cred: Pick<StoredCredential, 'accessTokenExpiresAt' | 'accessTokenObtainedAt'>): number {
  const lifetime = Math.max(0, cred.accessTokenExpiresAt - cred.accessTokenObtainedAt);
  return Math.min(60_000, lifetime * 0.1);
}

export function needsRenewal(cred: Pick<StoredCredential, 'accessTokenExpiresAt' | 'accessTokenObtainedAt'>, now: number): boolean {
  return cred.accessTokenExpiresAt - now <= renewalMarginMs(cred);
}

export function canRenew(cred: StoredCredential): boolean {
  return cred.grant === 'client_credentials' ? Boolean(cred.clientSecret) : Boolean(cred.refreshToken);
}

/** Access tokens without expires_in are assumed to last this long (then renewed, or the user logs in again). */
const ASSUMED_LIFETIME_MS = 5 * 60_000;

/** The credential after a renewal: new access token, rotated refresh token when the issuer sent one. */
export function applyTokens(cred: StoredCredential, tokens: Tokens, now: number): StoredCredential {
  const next: StoredCredential = {
    ...cred,
    accessToken: tokens.accessToken,
    accessTokenObtainedAt: now,
    accessTokenExpiresAt: now + (tokens.expiresIn !== undefined ? tokens.expiresIn * 1000 : ASSUMED_LIFETIME_MS),
  };
  if (tokens.refreshToken) next.refreshToken = tokens.refreshToken;
  return next;
}

/** The part of CredentialVault the manager uses. */
export interface VaultAccess {
  readonly home: string;
  load(server: string, profile: string): Promise<Loaded | undefined>;
  update(cred: StoredCredential, store: SecretStore): Promise<void>;
}

export interface TokenManagerOptions {
  server: string;
  profile: string;
  vault: VaultAccess;
  /** Asks the issuer for new tokens; default: refresh-token or client-credentials grant via openid-client. */
  renew?: (cred: StoredCredential) => Promise<Tokens>;
  now?: () => number;
  /** Cross-process mutual exclusion; default: a lock file under PHIGATE_HOME. */
  lock?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Diagnostics (PHIGATE_DEBUG): what was renewed and when; never a token. */
  debug?: (line: string) => void;
}

export class TokenManager {
  private loaded?: Loaded;
  private renewing?: Promise<string>;
  /** Renewals this process asked the issuer for (tests and diagnostics). */
  renewals = 0;
  private readonly now: () => number;

  constructor(private readonly opts: TokenManagerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** The stored login as it is now, without renewing; undefined when not logged in. */
  async current(): Promise<Loaded | undefined> {
    this.loaded ??= await this.opts.vault.load(this.opts.server, this.opts.profile);
    return this.loaded;
  }

  async accessToken(): Promise<string> {
    const loaded = await this.current();
    if (!loaded) throw notLoggedIn(this.opts.server, this.opts.profile);
    if (!needsRenewal(loaded.cred, this.now())) return loaded.cred.accessToken;
    this.renewing ??= this.renew().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async renew(): Promise<string> {
    const lock = this.opts.lock ?? (<T>(fn: () => Promise<T>) =>
      withCredentialLock(this.opts.vault.home, credentialKey(this.opts.server, this.opts.profile), fn));
    try {
      return await lock(() => this.renewLocked());
    } catch (err) {
      // Another process is still renewing: the token we have is good until it expires.
      const cred = this.loaded?.cred;
      if (err instanceof CredentialLockBusy && cred && cred.accessTokenExpiresAt > this.now()) return cred.accessToken;
      throw err;
    }
  }

  private async renewLocked(): Promise<string> {
    // Another process may have renewed while we waited for the lock: its tokens are the live ones
    // (the refresh token we hold may already be spent).
    const latest = (await this.opts.vault.load(this.opts.server, this.opts.profile)) ?? this.loaded;
    if (!latest) throw notLoggedIn(this.opts.server, this.opts.profile);
    this.loaded = latest;
    const { cred, store } = latest;
    const now = this.now();
    if (!needsRenewal(cred, now)) return cred.accessToken;
    if (!canRenew(cred)) {
      if (cred.accessTokenExpiresAt > now) return cred.accessToken;
      throw new PhigateError(`your login to ${this.opts.server} has expired`, ExitCode.NotAuthenticated, loginHint(this.opts.server, this.opts.profile));
    }
    this.opts.debug?.(`renewing the access token for ${this.opts.server} (${cred.grant === 'client_credentials' ? 'client credentials' : 'refresh token'}; ${Math.round((cred.accessTokenExpiresAt - now) / 1000)} s left)`);
    let tokens: Tokens;
    try {
      tokens = await (this.opts.renew ?? defaultRenew)(cred);
    } catch (err) {
      if (isOAuthError(err) || (err instanceof PhigateError && err.exitCode === ExitCode.NotAuthenticated)) {
        throw new PhigateError(`your login to ${this.opts.server} has expired or was revoked`, ExitCode.NotAuthenticated,
          loginHint(this.opts.server, this.opts.profile));
      }
      // The issuer is down: the token we have still works until it expires, so use it and try again later.
      if (cred.accessTokenExpiresAt > this.now()) return cred.accessToken;
      throw issuerError(cred.issuer, err, 'token refresh');
    }
    this.renewals++;
    const next = applyTokens(cred, tokens, this.now());
    try {
      await this.opts.vault.update(next, store);
    } catch (err) {
      // This process can go on with the new tokens; the next command will find the old refresh
      // token spent and ask for `phigate login`, which beats failing a running session now.
      this.opts.debug?.(`could not store the renewed tokens in the ${store.description}: ${(err as Error).message}`);
    }
    this.loaded = { cred: next, store };
    return next.accessToken;
  }
}

async function defaultRenew(cred: StoredCredential): Promise<Tokens> {
  if (cred.grant === 'client_credentials') {
    const config = await issuerConfig(cred.issuer, cred.clientId, { kind: 'secret', secret: cred.clientSecret ?? '' });
    return clientCredentialsTokens(config, cred.resource, cred.scopes);
  }
  const config = await issuerConfig(cred.issuer, cred.clientId, { kind: 'public' });
  return refreshTokens(config, cred.refreshToken ?? '', cred.resource);
}

export function loginHint(server: string, profile: string): string {
  return `run \`phigate login${server !== DEFAULT_SERVER ? ` --server ${server}` : ''}${profile !== 'default' ? ` --profile ${profile}` : ''}\``;
}

export function notLoggedIn(server: string, profile: string): PhigateError {
  return new PhigateError(`not logged in to ${server}${profile !== 'default' ? ` (profile ${profile})` : ''}`, ExitCode.NotAuthenticated,
    `${loginHint(server, profile)}, or set PHIGATE_TOKEN / pass --token-file FILE`);
}
