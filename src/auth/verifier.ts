// Verifies bearer JWTs against the JWKS of the trusted OIDC issuers (jose) and caches the verdicts.
import { createHash } from 'node:crypto';
import {
  compactVerify,
  createRemoteJWKSet,
  jwksCache,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type CryptoKey,
  type ExportedJWKSCache,
  type JWKSCacheInput,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type ProtectedHeaderParameters,
} from 'jose';
import { MAX_TOKEN_LENGTH } from './bearer.js';
import { AuthError, quote } from './errors.js';
import { identityFromClaims, type Identity, type OwnerSources } from './identity.js';

type RemoteJWKSet = ReturnType<typeof createRemoteJWKSet>;

export interface IssuerConfig {
  /** The issuer identifier, compared with the token's `iss` (a trailing slash is not significant). */
  issuer: string;
  /** The audience the token's `aud` must contain. */
  audience: string;
  /** Claim holding the groups; default 'groups'. A dotted path (`realm_access.roles`) reaches into objects. */
  groupsClaim?: string;
  /** Default: the `jwks_uri` of `${issuer}/.well-known/openid-configuration`. */
  jwksUri?: string;
  /** Claim of a service token naming the person the service acts for (identity.ts `owner`). */
  ownerClaim?: string;
  /** Service principals (client id or subject) of this issuer → the person each stands for. */
  serviceOwners?: Readonly<Record<string, string>>;
  /** `all`: every token of this issuer is a service's (the policy's `service_tokens`). */
  serviceTokens?: 'detect' | 'all';
}

export interface TokenVerifierOptions {
  /** Leeway for `exp` and `nbf`, in seconds; default 30. */
  clockToleranceSec?: number;
  /** Allow plain-http issuers and JWKS URIs: dev mode and tests only. */
  allowHttp?: boolean;
  /** The clock used for `exp`/`nbf` and the verdict cache (tests). */
  now?: () => Date;
  /** Timeout of each discovery and JWKS request, in milliseconds; default 5000. */
  httpTimeoutMs?: number;
  /** Most verdicts kept in the cache (least recently used go first); default 1000. 0 disables the cache. */
  cacheMaxEntries?: number;
  /**
   * A cached verdict is re-checked after at most this many seconds, and at once when the issuer's
   * JWKS was fetched again or is due to be (a removed key stops being honoured); default 60.
   */
  cacheMaxAgeSec?: number;
  /** Told of every signature check (a verdict not answered from the cache); tests count them. */
  onSignatureCheck?: (issuer: string) => void;
}

/** Signature algorithms accepted: asymmetric only. `none` and HS* are refused before any key lookup. */
export const ACCEPTED_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
]);
const ACCEPTED = new Set(ACCEPTED_ALGORITHMS);

/** How long a discovery document is trusted before it is fetched again (the old one stays in use if that fails). */
const DISCOVERY_TTL_MS = 24 * 60 * 60 * 1000;
const LOGIN_HINT = 'run `phigate login`';

interface IssuerState {
  issuer: string;
  audience: string;
  groupsClaim: string;
  owners: OwnerSources;
  /** Values of `iss` accepted for this issuer: as configured, and with/without the trailing slash. */
  accepted: string[];
  /** Set when the JWKS URI was configured rather than discovered. */
  fixedJwks: boolean;
  jwks?: RemoteJWKSet;
  /** jose's record of the JWKS it holds: `uat` changes whenever the JWKS is fetched again. */
  jwksCache: Partial<ExportedJWKSCache>;
  jwksUri?: string;
  discoveredAt: number;
  pending?: Promise<RemoteJWKSet>;
}

interface CacheEntry {
  identity: Identity;
  cachedAt: number;
  /** min(token exp, cachedAt + cacheMaxAgeSec). */
  until: number;
  state: IssuerState;
  /** The JWKS fetch the signature was checked against (IssuerState.jwksCache.uat then). */
  jwksAt: number;
}

/** Cache key: a digest, so the map holds no bearer token (heap snapshots, core dumps). */
function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64');
}

function normalizeIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, '');
}

function isoFromEpoch(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'an invalid time';
  const d = new Date(value * 1000);
  return Number.isNaN(d.getTime()) ? 'an invalid time' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** One short phrase for a network failure (no token can be in it: it is about a request we made). */
function describeFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err instanceof errors.JWKSTimeout) return `timed out after ${timeoutMs} ms`;
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error) return cause.message.split('\n')[0] ?? cause.name;
    return err.message;
  }
  return String(err);
}

function toAuthError(err: unknown): never {
  throw err instanceof AuthError ? err : new AuthError('malformed_token', 'token could not be verified', { cause: err });
}

export class TokenVerifier {
  private readonly states: IssuerState[] = [];
  private readonly byIssuer = new Map<string, IssuerState>();
  private readonly clockTolerance: number;
  private readonly allowHttp: boolean;
  private readonly now: () => Date;
  private readonly timeoutMs: number;
  private readonly cacheMax: number;
  private readonly cacheMaxAgeMs: number;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<Identity>>();
  private readonly onSignatureCheck?: (issuer: string) => void;

  /** Throws a plain Error for an unusable configuration (bad URL, plain http without allowHttp, duplicates). */
  constructor(issuers: IssuerConfig[], opts: TokenVerifierOptions = {}) {
    this.clockTolerance = opts.clockToleranceSec ?? 30;
    this.allowHttp = opts.allowHttp ?? false;
    this.now = opts.now ?? (() => new Date());
    this.timeoutMs = opts.httpTimeoutMs ?? 5000;
    this.cacheMax = opts.cacheMaxEntries ?? 1000;
    this.cacheMaxAgeMs = (opts.cacheMaxAgeSec ?? 60) * 1000;
    this.onSignatureCheck = opts.onSignatureCheck;
    for (const cfg of issuers) {
      if (typeof cfg.issuer !== 'string' || cfg.issuer === '') throw new Error('identity issuer: `issuer` is required');
      this.checkUrl(cfg.issuer, `issuer ${cfg.issuer}`);
      if (typeof cfg.audience !== 'string' || cfg.audience === '') {
        throw new Error(`identity issuer ${cfg.issuer}: \`audience\` is required`);
      }
      const key = normalizeIssuer(cfg.issuer);
      if (this.byIssuer.has(key)) throw new Error(`identity issuer ${cfg.issuer} is listed twice`);
      const state: IssuerState = {
        issuer: cfg.issuer,
        audience: cfg.audience,
        groupsClaim: cfg.groupsClaim ?? 'groups',
        owners: { ownerClaim: cfg.ownerClaim, serviceOwners: cfg.serviceOwners, allServices: cfg.serviceTokens === 'all' },
        accepted: [...new Set([cfg.issuer, key, `${key}/`])],
        fixedJwks: cfg.jwksUri !== undefined,
        jwksCache: {},
        discoveredAt: 0,
      };
      if (cfg.jwksUri !== undefined) {
        const url = this.checkUrl(cfg.jwksUri, `JWKS URI of issuer ${cfg.issuer}`);
        state.jwks = this.remoteJwks(url, state);
        state.jwksUri = url.href;
      }
      this.states.push(state);
      this.byIssuer.set(key, state);
    }
  }

  /** The configured issuers, as given. */
  get issuers(): string[] {
    return this.states.map((s) => s.issuer);
  }

  /**
   * Verifies a bearer token and returns who it names. Throws AuthError, never anything else.
   * Successful verdicts are cached by the token's digest until the token expires, at most
   * `cacheMaxAgeSec`, and only while the issuer's JWKS is the one the signature was checked against;
   * refusals are never cached.
   */
  async verify(token: string): Promise<Identity> {
    const nowMs = this.now().getTime();
    const key = typeof token === 'string' && token !== '' && token.length <= MAX_TOKEN_LENGTH ? tokenKey(token) : undefined;
    // Refused before any cache or key lookup (missing, over-long).
    if (key === undefined) return this.verifyUncached(token, new Date(nowMs)).then((r) => r.identity, toAuthError);
    const hit = this.cacheGet(key, nowMs);
    if (hit) return hit;
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.verifyUncached(token, new Date(nowMs))
      .then(({ identity, state, jwksAt }) => {
        if (jwksAt !== undefined) this.cacheSet(key, { identity, cachedAt: nowMs, until: 0, state, jwksAt }, nowMs);
        return identity;
      }, toAuthError)
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /**
   * Fetches every issuer's discovery document and JWKS now (e.g. at server start), so that a
   * misconfiguration shows early. Never throws: returns the failure of each issuer that failed.
   */
  async warmUp(): Promise<{ issuer: string; error?: AuthError }[]> {
    return Promise.all(this.states.map(async (state) => {
      try {
        const jwks = await this.jwksFor(state);
        if (!jwks.fresh) {
          await jwks.reload().catch((err: unknown) => { throw this.keyError(err, state, {}); });
        }
        return { issuer: state.issuer };
      } catch (err) {
        const error = err instanceof AuthError ? err : new AuthError('issuer_unavailable', `issuer ${state.issuer} is unavailable`, { cause: err });
        return { issuer: state.issuer, error };
      }
    }));
  }

  /** Forgets all cached verdicts (e.g. after the trusted issuers' keys were revoked). */
  clearCache(): void {
    this.cache.clear();
  }

  private checkUrl(value: string, what: string): URL {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error(`${what} is not a URL`);
    }
    if (url.protocol === 'https:' || (url.protocol === 'http:' && this.allowHttp)) return url;
    if (url.protocol === 'http:') throw new Error(`${what} uses plain http; only https is allowed outside dev mode`);
    throw new Error(`${what} must be an https URL`);
  }

  private cacheGet(key: string, nowMs: number): Identity | undefined {
    const entry = this.cache.get(key);
    if (entry === undefined) return undefined;
    this.cache.delete(key);
    const { state } = entry;
    if (nowMs >= entry.until || nowMs < entry.cachedAt - 1000 * this.clockTolerance ||
      state.jwksCache.uat !== entry.jwksAt || state.jwks?.fresh !== true) {
      // Expired; the clock went backwards past when it was cached; or the issuer's keys were fetched
      // again (or are due to be) since the signature was checked: verify again.
      return undefined;
    }
    // Most recently used goes last: eviction takes the first.
    this.cache.set(key, entry);
    return entry.identity;
  }

  private cacheSet(key: string, entry: CacheEntry, nowMs: number): void {
    if (this.cacheMax <= 0) return;
    const until = Math.min(entry.identity.expiresAt.getTime(), nowMs + this.cacheMaxAgeMs);
    if (until <= nowMs) return;
    if (this.cache.size >= this.cacheMax) {
      for (const [k, e] of this.cache) if (e.until <= nowMs) this.cache.delete(k);
      while (this.cache.size >= this.cacheMax) {
        const oldest = this.cache.keys().next();
        if (oldest.done === true) break;
        this.cache.delete(oldest.value);
      }
    }
    this.cache.set(key, { ...entry, until });
  }

  private remoteJwks(url: URL, state: IssuerState): RemoteJWKSet {
    state.jwksCache = {};
    return createRemoteJWKSet(url, { timeoutDuration: this.timeoutMs, [jwksCache]: state.jwksCache as JWKSCacheInput });
  }

  private async verifyUncached(token: string, now: Date): Promise<{ identity: Identity; state: IssuerState; jwksAt: number | undefined }> {
    if (typeof token !== 'string' || token === '') {
      throw new AuthError('missing_token', `no bearer token presented; ${LOGIN_HINT}`);
    }
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new AuthError('malformed_token', `bearer token is longer than ${MAX_TOKEN_LENGTH} characters`);
    }
    let header: ProtectedHeaderParameters;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new AuthError('malformed_token', 'bearer token is not a well-formed JWT');
    }
    const alg = header.alg;
    if (typeof alg !== 'string' || alg === '') {
      throw new AuthError('malformed_token', 'bearer token has no "alg" header');
    }
    if (!ACCEPTED.has(alg)) {
      const why = alg.toLowerCase() === 'none'
        ? 'unsigned token (alg "none") refused'
        : /^HS\d+$/i.test(alg)
          ? `token signed with shared-secret algorithm ${quote(alg)} refused`
          : `token signed with unsupported algorithm ${quote(alg)}`;
      throw new AuthError('unsupported_alg', `${why}; only RS*, PS*, ES* and EdDSA signatures are accepted`);
    }
    try {
      claims = decodeJwt(token);
    } catch {
      throw new AuthError('malformed_token', 'bearer token is not a well-formed JWT');
    }
    const iss = claims.iss;
    if (iss === undefined) throw new AuthError('missing_claim', 'token has no "iss" claim');
    if (typeof iss !== 'string') throw new AuthError('malformed_token', 'token "iss" claim is not a string');

    const state = this.byIssuer.get(normalizeIssuer(iss));
    if (state === undefined) throw await this.unknownIssuer(token, header, iss);

    const jwks = await this.jwksFor(state);
    const getKey: JWTVerifyGetKey<CryptoKey> = async (h, t) => {
      try {
        return await jwks(h, t);
      } catch (err) {
        if (err instanceof errors.JWKSMultipleMatchingKeys) throw err;
        throw this.keyError(err, state, h);
      }
    };
    const options: JWTVerifyOptions = {
      issuer: state.accepted,
      audience: state.audience,
      algorithms: [...ACCEPTED_ALGORITHMS],
      clockTolerance: this.clockTolerance,
      currentDate: now,
      requiredClaims: ['sub', 'exp'],
    };
    let payload: JWTPayload;
    this.onSignatureCheck?.(state.issuer);
    // The JWKS fetch the key came from: a verdict cached from it ends when the JWKS is fetched again.
    // Keys fetched again during the check (from a JWKS held before): not cached, as the key may be gone.
    const before = state.jwksCache.uat;
    try {
      ({ payload } = await jwtVerify(token, getKey, options));
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw this.mapError(err, state, header);
      payload = await this.verifyWithEach(err, token, options, state, header);
    }
    const after = state.jwksCache.uat;
    const jwksAt = before === undefined || before === after ? after : undefined;
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw new AuthError('missing_claim', 'token has no usable "sub" claim');
    }
    const identity = identityFromClaims(payload, state.groupsClaim, state.owners);
    // Every audit record names the identity; the log's canonical JSON (RFC 8785) has no form for a
    // lone surrogate, so such a token is refused here rather than leaving records unwritable later.
    const names = [identity.subject, identity.issuer, identity.name, identity.owner ?? '', identity.clientId ?? '', ...identity.groups];
    if (!names.every((n) => n.isWellFormed())) {
      throw new AuthError('invalid_claim', 'token claims hold text that is not valid Unicode (a lone UTF-16 surrogate); ask the identity provider\'s administrator');
    }
    Object.freeze(identity.groups);
    return { identity: Object.freeze(identity), state, jwksAt };
  }

  /** The JWKS lacks a `kid`, so several keys fit the token: try each (jose leaves this to the caller). */
  private async verifyWithEach(
    err: InstanceType<typeof errors.JWKSMultipleMatchingKeys>,
    token: string,
    options: JWTVerifyOptions,
    state: IssuerState,
    header: ProtectedHeaderParameters,
  ): Promise<JWTPayload> {
    for await (const key of err) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (e) {
        if (e instanceof errors.JWSSignatureVerificationFailed) continue;
        throw this.mapError(e, state, header);
      }
    }
    throw new AuthError('bad_signature', `token signature does not verify with any key of issuer ${state.issuer}`);
  }

  /**
   * A token whose `iss` is not configured. When its signature verifies with a key already fetched from
   * a configured issuer, the claim was altered or minted wrongly: `wrong_issuer`. Otherwise
   * `unknown_issuer`. Only keys already in memory are tried, so such tokens cause no requests.
   */
  private async unknownIssuer(token: string, header: ProtectedHeaderParameters, iss: string): Promise<AuthError> {
    const kid = header.kid;
    if (typeof kid === 'string') {
      for (const state of this.states) {
        const jwks = state.jwks;
        if (jwks === undefined || !jwks.fresh || !jwks.jwks()?.keys.some((k) => k.kid === kid)) continue;
        try {
          await compactVerify(token, jwks, { algorithms: [...ACCEPTED_ALGORITHMS] });
        } catch {
          continue;
        }
        return new AuthError('wrong_issuer', `token claims issuer ${quote(iss)} but is signed by a key of ${state.issuer}`);
      }
    }
    return new AuthError('unknown_issuer', `token issuer ${quote(iss)} is not trusted by this gateway`);
  }

  /** The issuer's JWKS resolver, discovering its URI first when it was not configured. */
  private async jwksFor(state: IssuerState): Promise<RemoteJWKSet> {
    if (state.jwks !== undefined) {
      if (state.fixedJwks || Date.now() - state.discoveredAt < DISCOVERY_TTL_MS) return state.jwks;
      // Stale discovery document: refresh in the background and keep the keys we have meanwhile.
      if (state.pending === undefined) {
        const current = state.jwks;
        state.pending = this.discover(state)
          .catch(() => current)
          .finally(() => { state.pending = undefined; });
      }
      return state.jwks;
    }
    if (state.pending === undefined) {
      state.pending = this.discover(state).finally(() => { state.pending = undefined; });
    }
    return state.pending;
  }

  private async discover(state: IssuerState): Promise<RemoteJWKSet> {
    const url = `${normalizeIssuer(state.issuer)}/.well-known/openid-configuration`;
    const unavailable = (detail: string, cause?: unknown): AuthError =>
      new AuthError('issuer_unavailable', `cannot verify the token: issuer ${state.issuer} is unavailable (${detail})`, { cause });
    let res: Response;
    try {
      res = await fetch(url, {
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
        headers: { accept: 'application/json' },
      });
    } catch (err) {
      throw unavailable(`discovery ${url}: ${describeFailure(err, this.timeoutMs)}`, err);
    }
    let doc: unknown;
    try {
      if (res.status !== 200) {
        await res.body?.cancel();
        throw unavailable(`discovery ${url} answered HTTP ${res.status}`);
      }
      doc = await res.json();
    } catch (err) {
      if (err instanceof AuthError) throw err;
      throw unavailable(`discovery ${url}: ${describeFailure(err, this.timeoutMs)}`, err);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw unavailable(`discovery ${url} is not a JSON object`);
    const meta = doc as Record<string, unknown>;
    if (typeof meta['issuer'] !== 'string' || normalizeIssuer(meta['issuer']) !== normalizeIssuer(state.issuer)) {
      throw unavailable(`its discovery document names issuer ${quote(meta['issuer'])}`);
    }
    const jwksUri = meta['jwks_uri'];
    if (typeof jwksUri !== 'string') throw unavailable('its discovery document has no jwks_uri');
    let uri: URL;
    try {
      uri = this.checkUrl(jwksUri, 'jwks_uri');
    } catch (err) {
      throw unavailable(`discovery: ${(err as Error).message}`);
    }
    if (state.jwks === undefined || state.jwksUri !== uri.href) {
      state.jwks = this.remoteJwks(uri, state);
      state.jwksUri = uri.href;
    }
    state.discoveredAt = Date.now();
    return state.jwks;
  }

  /** An error from the JWKS key lookup. */
  private keyError(err: unknown, state: IssuerState, header: { kid?: unknown; alg?: unknown }): AuthError {
    if (err instanceof AuthError) return err;
    if (err instanceof errors.JWKSNoMatchingKey) {
      const msg = typeof header.kid === 'string'
        ? `token signing key ${quote(header.kid)} is not among the keys of issuer ${state.issuer}`
        : `no key of issuer ${state.issuer} matches the token's algorithm ${quote(header.alg)}`;
      return new AuthError('unknown_key', msg);
    }
    if (err instanceof errors.JOSENotSupported || err instanceof errors.JOSEAlgNotAllowed) {
      return new AuthError('unsupported_alg', `token algorithm ${quote(header.alg)} is not supported`);
    }
    if (err instanceof errors.JWKSInvalid || err instanceof errors.JWKInvalid) {
      return new AuthError('issuer_unavailable', `cannot verify the token: issuer ${state.issuer} publishes an unusable JWKS (${err.message})`, { cause: err });
    }
    return new AuthError(
      'issuer_unavailable',
      `cannot verify the token: issuer ${state.issuer} is unavailable (JWKS ${state.jwksUri ?? '?'}: ${describeFailure(err, this.timeoutMs)})`,
      { cause: err },
    );
  }

  /** Maps what jwtVerify throws to an AuthError. */
  private mapError(err: unknown, state: IssuerState, header: ProtectedHeaderParameters): AuthError {
    if (err instanceof AuthError) return err;
    if (err instanceof errors.JWTExpired) {
      return new AuthError('expired', `token expired at ${isoFromEpoch(err.payload.exp)}; ${LOGIN_HINT}`);
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
      const { claim, reason, payload } = err;
      if (reason === 'missing') return new AuthError('missing_claim', `token has no ${quote(claim)} claim`);
      if (reason === 'invalid') return new AuthError('malformed_token', `token ${quote(claim)} claim is not a valid number`);
      switch (claim) {
        case 'nbf':
          return new AuthError('not_yet_valid', `token is not valid before ${isoFromEpoch(payload.nbf)}; check this machine's clock`);
        case 'aud':
          return new AuthError('wrong_audience', `token audience ${quote(payload.aud)} does not include ${quote(state.audience)}, which this gateway expects; ${LOGIN_HINT}`);
        case 'iss':
          return new AuthError('wrong_issuer', `token issuer ${quote(payload.iss)} is not ${state.issuer}`);
        default:
          return new AuthError('malformed_token', `token ${quote(claim)} claim is invalid`);
      }
    }
    if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
      return new AuthError('unsupported_alg', `token algorithm ${quote(header.alg)} is not accepted`);
    }
    if (err instanceof errors.JWSSignatureVerificationFailed) {
      return new AuthError('bad_signature', `token signature is invalid for the key of issuer ${state.issuer}`);
    }
    if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
      return new AuthError('malformed_token', `bearer token is not a well-formed JWT (${err.message})`);
    }
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSTimeout) return this.keyError(err, state, header);
    return new AuthError('malformed_token', `token could not be verified (${err instanceof Error ? err.message.slice(0, 120) : 'unknown error'})`, { cause: err });
  }
}
