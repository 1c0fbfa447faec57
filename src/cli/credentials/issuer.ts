// Talks to the identity provider the gateway advertises: reads GET /.well-known/phigate, discovers
// the issuer with openid-client, and runs the token requests (device code, client credentials,
// refresh, revocation). Errors come back as PhigateErrors a user can act on; no token is ever shown.
import * as oidc from 'openid-client';
import { ExitCode, PhigateError } from '../errors.js';

export const WELL_KNOWN_PATH = '/.well-known/phigate';
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** What the gateway says about logging in (GET /.well-known/phigate). */
export interface LoginInfo {
  issuer: string;
  client_id: string;
  audience?: string;
  /** Sent as the `resource` parameter (RFC 8707) when present. */
  resource?: string;
  scopes: string[];
  server_version?: string;
}

export async function fetchLoginInfo(serverUrl: string): Promise<LoginInfo> {
  let res: Response;
  try {
    res = await fetch(`${serverUrl}${WELL_KNOWN_PATH}`, { signal: AbortSignal.timeout(15_000), headers: { accept: 'application/json' } });
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code;
    throw new PhigateError(`gateway unreachable at ${serverUrl}${code ? ` (${code})` : ''}`, ExitCode.Unreachable,
      'check --server / PHIGATE_SERVER and that `phigate server` is running');
  }
  const text = await res.text();
  let body: Record<string, unknown> | undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) body = v as Record<string, unknown>;
  } catch {
    // handled below
  }
  if (res.status === 404 && body?.['error'] === 'login_unavailable') {
    throw new PhigateError(`${serverUrl} offers no interactive login: ${String(body['message'] ?? '')}`.trim(), ExitCode.NotAuthenticated,
      'use a workload token (PHIGATE_TOKEN or --token-file FILE) or `phigate login --client-credentials`');
  }
  if (!res.ok || !body) {
    throw new PhigateError(`${serverUrl}${WELL_KNOWN_PATH} answered HTTP ${res.status}; is this a phigate gateway?`,
      res.status >= 500 ? ExitCode.Unreachable : ExitCode.Error, 'check --server / PHIGATE_SERVER');
  }
  const issuer = body['issuer'];
  const clientId = body['client_id'];
  if (typeof issuer !== 'string' || typeof clientId !== 'string') {
    throw new PhigateError(`${serverUrl}${WELL_KNOWN_PATH} names no issuer or client_id`, ExitCode.Error);
  }
  const info: LoginInfo = {
    issuer,
    client_id: clientId,
    scopes: Array.isArray(body['scopes']) ? body['scopes'].filter((s): s is string => typeof s === 'string') : ['openid', 'offline_access'],
  };
  if (typeof body['audience'] === 'string') info.audience = body['audience'];
  if (typeof body['resource'] === 'string') info.resource = body['resource'];
  else if (info.audience && /^[a-z][a-z0-9+.-]*:/i.test(info.audience)) info.resource = info.audience;
  if (typeof body['server_version'] === 'string') info.server_version = body['server_version'];
  return info;
}

/** Plain http is only acceptable to a loopback issuer (tests, `phigate server --dev`). */
export function isLoopbackHttp(url: string): boolean {
  const u = new URL(url);
  return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(u.hostname);
}

export type ClientKind = { kind: 'public' } | { kind: 'secret'; secret: string };

/**
 * An openid-client Configuration for `clientId` at `issuer`. The ID token algorithm is taken from
 * the issuer's metadata rather than assumed (openid-client defaults to RS256; the dev issuer signs ES256).
 */
export async function issuerConfig(issuer: string, clientId: string, client: ClientKind): Promise<oidc.Configuration> {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new PhigateError(`the gateway advertises an invalid issuer URL "${issuer}"`, ExitCode.Error);
  }
  const insecure = isLoopbackHttp(issuer);
  if (url.protocol !== 'https:' && !insecure) {
    throw new PhigateError(`refusing to log in over plain http to ${issuer}`, ExitCode.Error, 'the issuer must use https (plain http is allowed for loopback only)');
  }
  let discovered: oidc.Configuration;
  try {
    discovered = await oidc.discovery(url, clientId, undefined, oidc.None(), { execute: insecure ? [oidc.allowInsecureRequests] : [], timeout: 15 });
  } catch (err) {
    throw issuerError(issuer, err, 'discovery');
  }
  const server = discovered.serverMetadata();
  const algs = server.id_token_signing_alg_values_supported ?? [];
  const metadata: Partial<oidc.ClientMetadata> = {};
  if (algs.length > 0 && !algs.includes('RS256')) metadata.id_token_signed_response_alg = algs[0]!;
  let auth: oidc.ClientAuth;
  if (client.kind === 'public') {
    auth = oidc.None();
  } else {
    const methods = server.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
    auth = !methods.includes('client_secret_basic') && methods.includes('client_secret_post')
      ? oidc.ClientSecretPost(client.secret)
      : oidc.ClientSecretBasic(client.secret);
  }
  const config = new oidc.Configuration(server, clientId, metadata, auth);
  config.timeout = 15;
  if (insecure) oidc.allowInsecureRequests(config);
  return config;
}

/** The fields of a token response the CLI keeps. */
export interface Tokens {
  accessToken: string;
  /** Seconds, as the issuer said; undefined when it did not say. */
  expiresIn?: number;
  refreshToken?: string;
}

function tokensOf(r: oidc.TokenEndpointResponse): Tokens {
  const t: Tokens = { accessToken: r.access_token };
  if (typeof r.expires_in === 'number') t.expiresIn = r.expires_in;
  if (typeof r.refresh_token === 'string') t.refreshToken = r.refresh_token;
  return t;
}

const withResource = (params: Record<string, string>, resource?: string): Record<string, string> =>
  resource ? { ...params, resource } : params;

export async function startDeviceAuthorization(config: oidc.Configuration, scopes: string[], resource?: string): Promise<oidc.DeviceAuthorizationResponse> {
  try {
    return await oidc.initiateDeviceAuthorization(config, withResource({ scope: scopes.join(' ') }, resource));
  } catch (err) {
    throw issuerError(config.serverMetadata().issuer, err, 'device authorization');
  }
}

/** One token-endpoint poll; rejects with openid-client's ResponseBodyError for authorization_pending etc. */
export async function requestDeviceToken(config: oidc.Configuration, deviceCode: string, resource?: string): Promise<Tokens> {
  return tokensOf(await oidc.genericGrantRequest(config, DEVICE_CODE_GRANT, withResource({ device_code: deviceCode }, resource)));
}

/**
 * `scopes`: what the identity provider needs asked for by name. Microsoft Entra ID refuses a
 * client-credentials grant without `api://<app id>/.default`, and Okta without a default scope.
 */
export async function clientCredentialsTokens(config: oidc.Configuration, resource?: string, scopes: readonly string[] = []): Promise<Tokens> {
  try {
    const params: Record<string, string> = scopes.length > 0 ? { scope: scopes.join(' ') } : {};
    return tokensOf(await oidc.clientCredentialsGrant(config, withResource(params, resource)));
  } catch (err) {
    throw issuerError(config.serverMetadata().issuer, err, 'client credentials');
  }
}

export async function refreshTokens(config: oidc.Configuration, refreshToken: string, resource?: string): Promise<Tokens> {
  return tokensOf(await oidc.refreshTokenGrant(config, refreshToken, withResource({}, resource)));
}

/** Whether the issuer publishes a revocation endpoint (RFC 7009). */
export function canRevoke(config: oidc.Configuration): boolean {
  return typeof config.serverMetadata().revocation_endpoint === 'string';
}

export async function revokeToken(config: oidc.Configuration, token: string, hint: 'refresh_token' | 'access_token'): Promise<void> {
  await oidc.tokenRevocation(config, token, { token_type_hint: hint });
}

/** An OAuth error answer from the issuer (as opposed to a network failure): its code and description. */
export interface OAuthRefusal {
  error: string;
  description?: string;
}

/**
 * The OAuth error in `err`, if it is one: a JSON error body, or a 401 whose WWW-Authenticate
 * challenge carries it (how oidc-provider answers a wrong client secret).
 */
export function oauthRefusal(err: unknown): OAuthRefusal | undefined {
  if (err instanceof oidc.ResponseBodyError) {
    return err.error_description ? { error: err.error, description: err.error_description } : { error: err.error };
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    const params = err.cause[0]?.parameters ?? {};
    const error = typeof params['error'] === 'string' ? params['error'] : err.status === 401 ? 'invalid_client' : `http_${err.status}`;
    const description = params['error_description'];
    return typeof description === 'string' ? { error, description } : { error };
  }
  return undefined;
}

export function isOAuthError(err: unknown): boolean {
  return oauthRefusal(err) !== undefined;
}

/** Maps what went wrong talking to the issuer to an exit code and one line. */
export function issuerError(issuer: string, err: unknown, during: string): PhigateError {
  if (err instanceof PhigateError) return err;
  const refusal = oauthRefusal(err);
  if (refusal) {
    const what = `${refusal.error}${refusal.description ? `: ${refusal.description}` : ''}`;
    if (refusal.error === 'invalid_client' || refusal.error === 'unauthorized_client') {
      return new PhigateError(`the identity provider refused the client credentials (${what})`, ExitCode.NotAuthenticated,
        'check PHIGATE_CLIENT_ID and PHIGATE_CLIENT_SECRET');
    }
    if (refusal.error === 'invalid_scope') {
      return new PhigateError(`the identity provider refused the ${during} request (${what})`, ExitCode.NotAuthenticated,
        'check --scope / PHIGATE_SCOPE against the scopes the identity provider grants this client');
    }
    return new PhigateError(`the identity provider refused the ${during} request (${what})`, ExitCode.NotAuthenticated);
  }
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; cause?: { code?: string } } };
  const netCode = e.cause?.code ?? e.cause?.cause?.code;
  if (err instanceof TypeError || netCode || e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new PhigateError(`identity provider unreachable at ${issuer}${netCode ? ` (${netCode})` : ''}`, ExitCode.Unreachable,
      'the gateway advertises this issuer; check that it is running and reachable from here');
  }
  return new PhigateError(`${during} with ${issuer} failed: ${e.message ?? String(err)}`, ExitCode.Error);
}
