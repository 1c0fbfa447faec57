// A real OpenID Provider (oidc-provider) on 127.0.0.1 for tests: mints client-credentials JWT access tokens.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface TestIdp {
  /** http://127.0.0.1:<port> */
  issuer: string;
  /** The default audience of minted tokens; 'phigate' unless given. */
  audience: string;
  /** The kid of the provider's signing key (ES256). */
  kid: string;
  /** The public half of the provider's signing key, as published in its JWKS. */
  publicJwk: JWK;
  /**
   * A real access token (JWT) from the provider's token endpoint via the client-credentials grant of
   * client `name`; its groups claim holds the groups given at start.
   */
  mint(name: string, opts?: { audience?: string }): Promise<string>;
  /**
   * Signs claims with the provider's own signing key and kid (for expired / not-yet-valid /
   * wrong-claim tokens without sleeping). Defaults, each overridable: iss = issuer, aud = audience,
   * sub = 'test-subject', iat = now, exp = now + 300 s. A claim given as `undefined` is left out.
   * Header defaults: { alg: 'ES256', kid, typ: 'JWT' }.
   */
  signWithIssuerKey(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export interface StartTestIdpOptions {
  /** client name -> groups */
  identities: Record<string, string[]>;
  audience?: string;
  groupsClaim?: string;
  /** Publish a device_authorization_endpoint (what `phigate login` needs of an issuer). */
  deviceFlow?: boolean;
}

/** The parts of oidc-provider (which ships no types) this file uses. */
interface OidcProviderModule {
  default: new (issuer: string, configuration: Record<string, unknown>) => { callback(): RequestHandler };
  errors: { InvalidTarget: new (description?: string) => Error };
}
type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Resource indicators must be absolute URIs; audiences such as 'phigate' are not, so they are wrapped. */
const RESOURCE_PREFIX = 'urn:phigate:audience:';
const resourceFor = (audience: string): string => `${RESOURCE_PREFIX}${encodeURIComponent(audience)}`;

const NOTICE = /^(?:\x1b\[[\d;]*m)?oidc-provider (?:WARNING|NOTICE): /;
let noticesSilenced = false;

/**
 * oidc-provider prints development notices (Node 20 is "unsupported", in-memory adapter, ...) with
 * console.warn/info. Drop exactly those lines in the test process; everything else passes through.
 */
function silenceProviderNotices(): void {
  if (noticesSilenced) return;
  noticesSilenced = true;
  for (const level of ['warn', 'info'] as const) {
    const original = console[level];
    console[level] = (...args: unknown[]): void => {
      if (typeof args[0] === 'string' && NOTICE.test(args[0])) return;
      original.apply(console, args);
    };
  }
}

let providerModule: Promise<OidcProviderModule> | undefined;

function loadProvider(): Promise<OidcProviderModule> {
  silenceProviderNotices();
  // A non-literal specifier: the module has no types, and the warning it prints on import is filtered above.
  const specifier: string = 'oidc-provider';
  providerModule ??= import(specifier) as Promise<OidcProviderModule>;
  return providerModule;
}

export async function startTestIdp(opts: StartTestIdpOptions): Promise<TestIdp> {
  const { default: Provider, errors } = await loadProvider();
  const audience = opts.audience ?? 'phigate';
  const groupsClaim = opts.groupsClaim ?? 'groups';
  const identities = new Map(Object.entries(opts.identities));
  const secrets = new Map([...identities.keys()].map((name) => [name, randomBytes(24).toString('base64url')]));

  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  Object.assign(publicJwk, { kid, alg: 'ES256', use: 'sig' });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };

  // Listen first: the issuer URL needs the port, and the provider needs the issuer URL.
  let handler: RequestHandler = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const provider = new Provider(issuer, {
    clients: [...secrets].map(([name, secret]) => ({
      client_id: name,
      client_secret: secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    jwks: { keys: [privateJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      ...(opts.deviceFlow ? { deviceFlow: { enabled: true } } : {}),
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resourceFor(audience),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (!resource.startsWith(RESOURCE_PREFIX)) throw new errors.InvalidTarget();
          return {
            scope: 'api',
            audience: decodeURIComponent(resource.slice(RESOURCE_PREFIX.length)),
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    // Each client stands for the person of its name: policies that trust `owner_claim: owner` know whose it is.
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => ({
      [groupsClaim]: identities.get(token.clientId ?? '') ?? [],
      owner: token.clientId,
    }),
  });
  handler = provider.callback();

  return {
    issuer,
    audience,
    kid,
    publicJwk,

    async mint(name, mintOpts = {}) {
      const secret = secrets.get(name);
      if (secret === undefined) throw new Error(`test IdP has no identity ${JSON.stringify(name)}`);
      const basic = Buffer.from(`${encodeURIComponent(name)}:${encodeURIComponent(secret)}`).toString('base64');
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          resource: resourceFor(mintOpts.audience ?? audience),
        }),
      });
      const body = (await res.json()) as { access_token?: unknown; error?: unknown; error_description?: unknown };
      if (res.status !== 200 || typeof body.access_token !== 'string') {
        throw new Error(`test IdP token endpoint answered ${res.status}: ${String(body.error)} ${String(body.error_description)}`);
      }
      return body.access_token;
    },

    async signWithIssuerKey(claims, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = { iss: issuer, aud: audience, sub: 'test-subject', iat: now, exp: now + 300, ...claims };
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT', ...header })
        .sign(privateKey as CryptoKey);
    },

    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
