// `phigate server --dev`: a real OpenID Provider (oidc-provider) mounted under the server's own URL,
// with four dev identities, a public device-flow client for `phigate login` and one confidential
// client per identity for `--client-credentials`. Loopback-only; never for production.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { readBody } from '../server/http.js';

export const DEV_MOUNT = '/oidc';
export const DEV_CLI_CLIENT_ID = 'phigate-cli';
export const DEV_AUDIENCE = 'phigate';
/** The resource-server scope access tokens for the gateway carry. */
export const DEV_API_SCOPE = 'phigate';

export interface DevIdentity {
  name: string;
  displayName: string;
  groups: string[];
}

export const DEV_IDENTITIES: readonly DevIdentity[] = [
  { name: 'alice', displayName: 'Alice — engineer', groups: ['engineering'] },
  { name: 'bob', displayName: 'Bob — privacy officer (approver)', groups: ['privacy-officers'] },
  { name: 'carol', displayName: 'Carol — auditor', groups: ['auditors'] },
  { name: 'agent', displayName: 'Agent — AI coding agent', groups: ['ai-agents'] },
];

export const devClientSecret = (name: string): string => `dev-${name}-secret`;

/** Each `dev-<name>` client-credentials client stands for the dev person <name>. */
export function devServiceOwners(): Record<string, string> {
  return Object.fromEntries(DEV_IDENTITIES.map((i) => [`dev-${i.name}`, i.name]));
}

export interface DevIssuer {
  issuer: string;
  audience: string;
  clientId: string;
  scopes: string[];
  /** Handles every request under DEV_MOUNT. */
  handle(req: IncomingMessage, res: ServerResponse): void;
}

export interface DevIssuerOptions {
  /** The gateway's own base URL, e.g. http://127.0.0.1:7432 */
  baseUrl: string;
  /** Where the signing key is kept so that tokens survive a restart. */
  stateDir: string;
  accessTokenTtlSec?: number;
  refreshTokenTtlSec?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The sign-in form holds one identity name. */
const MAX_FORM_BYTES = 64 * 1024;
interface InteractionDetails {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}
interface GrantLike {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}
interface ProviderLike {
  callback(): Handler;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, opts?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: { new (init: { accountId: string; clientId: string }): GrantLike; find(id: string): Promise<GrantLike | undefined> };
}

async function loadOrCreateKey(stateDir: string): Promise<JWK> {
  const file = join(stateDir, 'dev-issuer-key.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as JWK;
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

/** oidc-provider prints notices about Node 20 and its in-memory store on startup; those are expected in dev mode. */
function quietProviderNotices(): void {
  for (const level of ['warn', 'info'] as const) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]): void => {
      if (typeof args[0] === 'string' && /oidc-provider (WARNING|NOTICE)/.test(args[0])) return;
      original(...args);
    };
  }
}

export async function createDevIssuer(opts: DevIssuerOptions): Promise<DevIssuer> {
  quietProviderNotices();
  const { default: Provider, errors } = (await import('oidc-provider')) as unknown as {
    default: new (issuer: string, config: Record<string, unknown>) => ProviderLike;
    errors: { InvalidTarget: new () => Error };
  };
  const issuer = `${opts.baseUrl}${DEV_MOUNT}`;
  const resource = opts.baseUrl; // the gateway is the resource server; its audience is DEV_AUDIENCE
  const accounts = new Map(DEV_IDENTITIES.map((i) => [i.name, i]));
  const key = await loadOrCreateKey(opts.stateDir);
  const accessTtl = opts.accessTokenTtlSec ?? 3600;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: DEV_CLI_CLIENT_ID,
        client_name: 'phigate CLI',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'none',
      },
      ...DEV_IDENTITIES.map((i) => ({
        client_id: `dev-${i.name}`,
        client_secret: devClientSecret(i.name),
        client_name: `${i.displayName} (service)`,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      })),
    ],
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    jwks: { keys: [key] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    scopes: ['openid', 'offline_access', 'profile', 'groups', DEV_API_SCOPE],
    findAccount: (_ctx: unknown, id: string) => {
      const who = accounts.get(id);
      if (!who) return undefined;
      return {
        accountId: id,
        claims: () => ({ sub: id, name: who.displayName, preferred_username: id, groups: who.groups }),
      };
    },
    extraTokenClaims: (_ctx: unknown, token: { accountId?: string; clientId?: string; kind?: string }) => {
      const human = token.accountId ? accounts.get(token.accountId) : undefined;
      if (human) return { groups: human.groups, preferred_username: human.name };
      const service = token.clientId?.startsWith('dev-') ? accounts.get(token.clientId.slice(4)) : undefined;
      return service ? { groups: service.groups } : {};
    },
    ttl: {
      AccessToken: accessTtl,
      ClientCredentials: accessTtl,
      DeviceCode: 600,
      RefreshToken: opts.refreshTokenTtlSec ?? 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Interaction: 600,
      Session: 24 * 3600,
    },
    // A refresh token for every device-flow login that asked for offline_access.
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(g: string): boolean }, code: { scopes: Set<string> }) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${DEV_MOUNT}/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: (ctx: { body: string }, form: string, _out: unknown, err: unknown) => {
          ctx.body = page('Sign in to phigate (dev)', `${codeProblem(err)}${withinForm(form, '<button type="submit">Continue</button>')}`);
        },
        userCodeConfirmSource: (ctx: { body: string }, form: string, _client: unknown, _info: unknown, userCode: string) => {
          ctx.body = page('Confirm the code', `<p>Does your terminal show this code?</p><p class="code">${escapeHtml(userCode)}</p>${withinForm(form,
            '<button type="submit">Yes, continue</button> <button type="submit" name="abort" value="yes" class="secondary">No, abort</button>')}`);
        },
        successSource: (ctx: { body: string }) => {
          ctx.body = page('Signed in', '<p>You are signed in. Return to your terminal; you can close this page.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, requested: string) => {
          if (requested !== resource) throw new errors.InvalidTarget();
          return { scope: DEV_API_SCOPE, audience: DEV_AUDIENCE, accessTokenFormat: 'jwt', accessTokenTTL: accessTtl, jwt: { sign: { alg: 'ES256' } } };
        },
      },
    },
    renderError: (ctx: { type: string; body: string }, out: Record<string, string>) => {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<p class="err">${escapeHtml(out['error'] ?? 'error')}: ${escapeHtml(out['error_description'] ?? '')}</p>`);
    },
  });
  const callback = provider.callback();

  const interaction = async (req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> => {
    const details = await provider.interactionDetails(req, res);
    const [, , action] = rest.split('/'); // '', uid, action?
    if (details.prompt.name === 'login') {
      if (req.method === 'POST' && action === 'login') {
        // A larger form is refused (the sign-in error page names the limit).
        const form = new URLSearchParams(await readBody(req, MAX_FORM_BYTES));
        const who = form.get('identity') ?? '';
        if (!accounts.has(who)) {
          sendHtml(res, 400, page('Unknown identity', `<p class="err">No dev identity named ${escapeHtml(who)}.</p>`));
          return;
        }
        await provider.interactionFinished(req, res, { login: { accountId: who } }, { mergeWithLastSubmission: false });
        return;
      }
      const buttons = DEV_IDENTITIES.map((i) =>
        // One per line, and the groups set apart, in a text browser too (where CSS does not apply).
        `<div><button type="submit" name="identity" value="${i.name}">${escapeHtml(i.displayName)} <small>(groups: ${escapeHtml(i.groups.join(', '))})</small></button></div>`).join('');
      sendHtml(res, 200, page('Sign in as…', `<p>Pick a dev identity. These exist only on this dev server.</p><form method="post" action="${DEV_MOUNT}/interaction/${details.uid}/login">${buttons}</form>`));
      return;
    }
    if (details.prompt.name === 'consent') {
      // Dev identities consent implicitly: grant exactly what phigate login asks for.
      const accountId = details.session?.accountId ?? '';
      const clientId = String(details.params['client_id'] ?? '');
      const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId });
      if (!grant) throw new Error('grant not found');
      const d = details.prompt.details as {
        missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]>;
      };
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    sendHtml(res, 400, page('Unsupported step', `<p class="err">Unsupported sign-in step ${escapeHtml(details.prompt.name)}.</p>`));
  };

  return {
    issuer,
    audience: DEV_AUDIENCE,
    clientId: DEV_CLI_CLIENT_ID,
    scopes: ['openid', 'offline_access', 'profile', 'groups', DEV_API_SCOPE],
    handle(req, res) {
      const url = req.url ?? '/';
      const rest = url.slice(DEV_MOUNT.length) || '/';
      if (rest.startsWith('/interaction/')) {
        interaction(req, res, rest.split('?')[0]!.slice('/interaction'.length)).catch((err: Error) => {
          if (!res.headersSent) sendHtml(res, 400, page('Sign-in error', `<p class="err">${escapeHtml(err.message)}</p><p>Start again with <code>phigate login</code>.</p>`));
        });
        return;
      }
      // Mounted below DEV_MOUNT: oidc-provider derives its mount path from originalUrl vs url.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = url;
      req.url = rest;
      callback(req, res);
    },
  };
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

/** What the code page says above its form, after oidc-provider re-renders it for `err`. */
function codeProblem(err: unknown): string {
  const name = err instanceof Error ? err.name : undefined;
  if (!name) return '<p>Enter the code shown by <code>phigate login</code>.</p>';
  if (name === 'AbortedError') return '<p class="err">Sign-in aborted: nothing was granted. You can close this page.</p>';
  if (name === 'ExpiredError') return '<p class="err">That code has expired: run <code>phigate login</code> again.</p>';
  if (name === 'AlreadyUsedError') return '<p class="err">That code was already used: run <code>phigate login</code> again.</p>';
  return '<p class="err">That code was not recognised. Try again.</p>';
}

/**
 * Puts the submit buttons inside oidc-provider's form. Buttons outside it that point at it with a
 * `form=` attribute need an HTML5 browser: text browsers (w3m, lynx) and curl users cannot press them.
 */
function withinForm(form: string, buttons: string): string {
  const end = form.lastIndexOf('</form>');
  if (end < 0) throw new Error('oidc-provider gave a device-flow form without </form>');
  return `${form.slice(0, end)}${buttons}${form.slice(end)}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Self-contained pages: the dev server must work without reaching any external host. */
function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · phigate dev</title><style>
body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0;padding:40px 16px;color:#1d2731}
main{max-width:420px;margin:0 auto;background:#fff;border-radius:8px;padding:24px 28px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.4em;margin-top:0}.badge{font-size:.7em;background:#b45309;color:#fff;border-radius:4px;padding:2px 6px;vertical-align:middle}
button{display:block;width:100%;margin:8px 0;padding:10px;font-size:1em;border:0;border-radius:6px;background:#1d4ed8;color:#fff;cursor:pointer;text-align:left}
button small{display:block;opacity:.8;font-size:.8em}button.secondary{background:#e5e7eb;color:#111}
input[type=text]{width:100%;box-sizing:border-box;padding:10px;font-size:1.2em;text-transform:uppercase;text-align:center;margin:8px 0}
.code{font-family:monospace;font-size:2em;text-align:center;letter-spacing:.1em}.err{color:#b91c1c}
</style></head><body><main><h1>${escapeHtml(title)} <span class="badge">dev</span></h1>${body}</main></body></html>`;
}
