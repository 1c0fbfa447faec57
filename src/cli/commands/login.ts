// `phigate login`: obtains tokens for a gateway from the issuer it advertises, by the device
// authorization grant in a browser (people) or the client-credentials grant (service accounts), and
// stores them for (server, profile). With --token-file it only checks a workload token and stores nothing.
import { Command } from 'commander';
import { ExitCode, PhigateError } from '../errors.js';
import { withGatewayOptions } from '../options.js';
import { resolveContext, resolveProfile, resolveServer, type GlobalOptions } from '../context.js';
import { phigateHome, credentialsFilePath } from '../credentials/paths.js';
import { CredentialVault, plainTextWarning } from '../credentials/vault.js';
import {
  clientCredentialsTokens, fetchLoginInfo, issuerConfig, requestDeviceToken, startDeviceAuthorization, type Tokens,
} from '../credentials/issuer.js';
import { pollDeviceToken } from '../credentials/device-flow.js';
import { canOpenBrowser, openBrowser } from '../credentials/browser.js';
import { applyTokens } from '../credentials/token-manager.js';
import { tokenIdentity, type TokenIdentity } from '../credentials/claims.js';
import type { StoredCredential } from '../credentials/types.js';
import { gatewayGet } from '../gateway-api.js';
import { CONNECTIONS_PATH, type ConnectionInfo } from '../../tunnel/protocol.js';
import { progress, say as uiSay } from '../../ui/progress.js';

interface LoginOptions extends GlobalOptions {
  browser: boolean;
  clientCredentials?: boolean;
  scope?: string[];
  insecureStorage?: boolean;
}

export function loginCommand(): Command {
  return withGatewayOptions(
    new Command('login')
      .description('log in to a gateway: device-code login in your browser, or a service account with --client-credentials')
      .option('--no-browser', 'print the sign-in URL without opening a browser')
      .option('--client-credentials', 'log in as a service account with PHIGATE_CLIENT_ID and PHIGATE_CLIENT_SECRET')
      .option('--scope <scope>', 'with --client-credentials: a scope to ask the identity provider for (repeatable; env PHIGATE_SCOPE, space-separated), e.g. api://<app id>/.default for Microsoft Entra ID', collectScopes)
      .option('--insecure-storage', 'store the tokens in a plain-text file under PHIGATE_HOME instead of the OS keychain')
      .addHelpText('after', `
--token-file FILE (or PHIGATE_TOKEN) stores nothing: the workload token is checked against the gateway
and read again on every later use. Environment: PHIGATE_HOME (where config and the fallback
credentials file live), PHIGATE_CLIENT_ID / PHIGATE_CLIENT_SECRET and PHIGATE_SCOPE (with
--client-credentials).`),
  ).action(async (opts: LoginOptions) => runLogin(opts));
}

const say = (line: string): void => uiSay(line);

function collectScopes(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(/\s+/).filter(Boolean)];
}

async function runLogin(opts: LoginOptions): Promise<void> {
  if (opts.tokenFile && opts.clientCredentials) {
    throw new PhigateError('--token-file and --client-credentials are two different identities; pick one', ExitCode.Usage);
  }
  const env = process.env;
  const scopes = opts.scope ?? (env['PHIGATE_SCOPE'] ?? '').split(/\s+/).filter(Boolean);
  if (opts.scope && !opts.clientCredentials) {
    throw new PhigateError('--scope goes with --client-credentials: a device-code login asks for the scopes the gateway names', ExitCode.Usage);
  }
  if (opts.tokenFile) return checkWorkloadToken(opts);
  const server = resolveServer(opts, env);
  const profile = resolveProfile(opts, env);
  const home = phigateHome(env);
  const now = Date.now;

  let cred: StoredCredential;
  if (opts.clientCredentials) {
    const clientId = env['PHIGATE_CLIENT_ID']?.trim();
    const secret = env['PHIGATE_CLIENT_SECRET'];
    if (!clientId || !secret) {
      throw new PhigateError('--client-credentials needs PHIGATE_CLIENT_ID and PHIGATE_CLIENT_SECRET in the environment', ExitCode.Usage,
        'export PHIGATE_CLIENT_ID=<client id> PHIGATE_CLIENT_SECRET=<secret>, then run the command again');
    }
    const info = await fetchLoginInfo(server);
    const config = await issuerConfig(info.issuer, clientId, { kind: 'secret', secret });
    const tokens = await clientCredentialsTokens(config, info.resource, scopes);
    cred = credential({ server, profile, issuer: info.issuer, clientId, grant: 'client_credentials', scopes, resource: info.resource }, tokens, now());
    cred.clientSecret = secret;
  } else {
    const info = await fetchLoginInfo(server);
    const config = await issuerConfig(info.issuer, info.client_id, { kind: 'public' });
    const auth = await startDeviceAuthorization(config, info.scopes, info.resource);
    const url = auth.verification_uri_complete ?? auth.verification_uri;
    say(`To log in to ${server}, open this URL in a browser:\n\n    ${url}\n`);
    say(`and check that it shows the code:  ${auth.user_code}\n`);
    if (opts.browser && canOpenBrowser(env)) openBrowser(url, env);
    const fallbackIntervalS = pollIntervalOverride(env);
    const waiting = progress(`Waiting for you to finish in the browser (the code expires in ${Math.round(auth.expires_in / 60)} min)...`);
    let tokens: Tokens;
    try {
      ({ tokens } = await pollDeviceToken({
        intervalS: auth.interval,
        expiresInS: auth.expires_in,
        fallbackIntervalS,
        request: () => requestDeviceToken(config, auth.device_code, info.resource),
        say,
      }));
    } finally {
      waiting.done();
    }
    cred = credential({ server, profile, issuer: info.issuer, clientId: info.client_id, grant: 'device_code', scopes: info.scopes, resource: info.resource }, tokens, now());
  }

  // Only keep tokens the gateway actually accepts: a mismatch (audience, issuer) is better found now.
  const list = await gatewayGet<{ connections: ConnectionInfo[] }>({ serverUrl: server, source: 'stored' }, CONNECTIONS_PATH, cred.accessToken);
  const vault = new CredentialVault({ home });
  const saved = await vault.saveLogin(cred, { insecureStorage: opts.insecureStorage });
  if (saved.fallbackReason) say(plainTextWarning(credentialsFilePath(home), saved.fallbackReason));

  const who = tokenIdentity(cred.accessToken);
  process.stdout.write(`${describeLogin(server, who, cred, list.connections.length)}\n`);
  if (env['PHIGATE_TOKEN']?.trim()) say('note: PHIGATE_TOKEN is set and takes precedence over this login; unset it to use the login');
}

function credential(
  base: Pick<StoredCredential, 'server' | 'profile' | 'issuer' | 'clientId' | 'grant' | 'scopes'> & { resource?: string | undefined },
  tokens: Tokens,
  now: number,
): StoredCredential {
  const { resource, ...rest } = base;
  const empty: StoredCredential = { version: 1, ...rest, accessToken: '', accessTokenExpiresAt: now, accessTokenObtainedAt: now };
  if (resource) empty.resource = resource;
  return applyTokens(empty, tokens, now);
}

function describeLogin(server: string, who: TokenIdentity | undefined, cred: StoredCredential, connections: number): string {
  const name = who ? `${who.name} (${who.kind}; groups: ${who.groups.join(', ') || 'none'})` : 'an identity the gateway accepts';
  const renew = cred.grant === 'client_credentials' || cred.refreshToken ? ', renewed automatically' : '; run `phigate login` again then';
  return `Logged in to ${server} as ${name}.\n` +
    `Access token valid until ${new Date(cred.accessTokenExpiresAt).toISOString()}${renew}.\n` +
    `You may use ${connections} connection${connections === 1 ? '' : 's'} (see \`phigate connections\`).`;
}

/** PHIGATE_DEVICE_POLL_INTERVAL: seconds between polls when the issuer sends no interval (tests use a short one). */
function pollIntervalOverride(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env['PHIGATE_DEVICE_POLL_INTERVAL'];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0.05 || n > 60) {
    throw new PhigateError(`PHIGATE_DEVICE_POLL_INTERVAL must be a number of seconds between 0.05 and 60, got "${raw}"`, ExitCode.Usage);
  }
  return n;
}

/** `login --token-file FILE`: nothing to obtain or store; say whether the gateway accepts the token. */
async function checkWorkloadToken(opts: LoginOptions): Promise<void> {
  const ctx = resolveContext(opts);
  const token = await ctx.token();
  const list = await gatewayGet<{ connections: ConnectionInfo[] }>(ctx, CONNECTIONS_PATH, token);
  const who = tokenIdentity(token);
  const exp = who?.expiresAt ? `; it expires at ${who.expiresAt.toISOString()}` : '';
  process.stdout.write(
    `The gateway at ${ctx.serverUrl} accepts the token in ${opts.tokenFile} as ${who ? `${who.name} (${who.kind}; groups: ${who.groups.join(', ') || 'none'})` : 'a valid identity'}${exp}.\n` +
      `You may use ${list.connections.length} connection${list.connections.length === 1 ? '' : 's'}. Nothing was stored: pass --token-file ${opts.tokenFile} (or set PHIGATE_TOKEN) on each command; the file is read again every time.\n`,
  );
}
