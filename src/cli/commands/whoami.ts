// `phigate whoami`: who the CLI acts as for a gateway, where that identity comes from, until when it
// is valid, and whether the gateway accepts it. Exit 3 when there is nothing to act as.
import { Command } from 'commander';
import { withGatewayOptions } from '../options.js';
import { resolveContext, type GlobalOptions, type TokenSource } from '../context.js';
import { ExitCode, PhigateError } from '../errors.js';
import { notLoggedIn, canRenew } from '../credentials/token-manager.js';
import { tokenIdentity, type TokenIdentity } from '../credentials/claims.js';
import { gatewayGet } from '../gateway-api.js';
import { CONNECTIONS_PATH, type ConnectionInfo } from '../../tunnel/protocol.js';

interface WhoamiOptions extends GlobalOptions {
  json?: boolean;
}

/** The document `phigate whoami --json` prints. */
export interface WhoamiReport {
  server: string;
  profile: string;
  identity: Omit<TokenIdentity, 'expiresAt'> | null;
  token: {
    /** keychain / file: a stored login; env: PHIGATE_TOKEN; token-file: --token-file. */
    source: 'keychain' | 'file' | 'env' | 'token-file';
    /** Where a stored login lives, or the token file's path; null for PHIGATE_TOKEN. */
    location: string | null;
    expiresAt: string | null;
    /** Whether the CLI renews it by itself before it expires. */
    renewable: boolean;
    grant: 'device_code' | 'client_credentials' | null;
  };
  gateway: { status: 'accepted'; connections: number } | { status: 'unreachable'; message: string };
}

export function whoamiCommand(): Command {
  return withGatewayOptions(
    new Command('whoami')
      .description('show who you are logged in as, where the credential is stored and whether the gateway accepts it')
      .option('--json', 'print one JSON document'),
  ).action(async (opts: WhoamiOptions) => {
    const report = await whoami(opts);
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderWhoami(report));
  });
}

async function whoami(opts: WhoamiOptions): Promise<WhoamiReport> {
  const ctx = resolveContext(opts);
  let source: WhoamiReport['token']['source'] = sourceName(ctx.source);
  let location: string | null = ctx.source === 'token-file' ? (opts.tokenFile ?? null) : null;
  let renewable = false;
  let grant: WhoamiReport['token']['grant'] = null;
  if (ctx.tokens) {
    const loaded = await ctx.tokens.current();
    if (!loaded) throw notLoggedIn(ctx.serverUrl, ctx.profile);
    source = loaded.store.kind;
    location = loaded.store.description;
    renewable = canRenew(loaded.cred);
    grant = loaded.cred.grant;
  }
  const token = await ctx.token();
  const stored = ctx.tokens ? (await ctx.tokens.current())?.cred : undefined;
  const who = tokenIdentity(token);
  const expiresAt = stored ? new Date(stored.accessTokenExpiresAt) : who?.expiresAt;
  let gateway: WhoamiReport['gateway'];
  try {
    const list = await gatewayGet<{ connections: ConnectionInfo[] }>(ctx, CONNECTIONS_PATH, token);
    gateway = { status: 'accepted', connections: list.connections.length };
  } catch (err) {
    // Not being able to ask is not the same as being refused: show what we know, say what we could not check.
    if (!(err instanceof PhigateError) || err.exitCode !== ExitCode.Unreachable) throw err;
    gateway = { status: 'unreachable', message: err.message };
    process.stderr.write(`phigate: warning: ${err.message}; could not check that it accepts this identity\n`);
  }
  const identity: WhoamiReport['identity'] = who
    ? { name: who.name, subject: who.subject, kind: who.kind, groups: who.groups, issuer: who.issuer, ...(who.clientId ? { clientId: who.clientId } : {}) }
    : null;
  return {
    server: ctx.serverUrl,
    profile: ctx.profile,
    identity,
    token: { source, location, expiresAt: expiresAt ? expiresAt.toISOString() : null, renewable, grant },
    gateway,
  };
}

function sourceName(s: TokenSource): WhoamiReport['token']['source'] {
  return s === 'stored' ? 'keychain' : s;
}

export function renderWhoami(r: WhoamiReport, now = Date.now()): string {
  const lines: string[] = [];
  const id = r.identity;
  lines.push(`${id ? `${id.name} (${id.kind})` : 'An identity that is not a JWT'} on ${r.server}${r.profile !== 'default' ? ` (profile ${r.profile})` : ''}`);
  if (id) {
    lines.push(`  groups:   ${id.groups.join(', ') || '(none)'}`);
    lines.push(`  subject:  ${id.subject}${id.clientId ? `  (client ${id.clientId})` : ''}`);
    lines.push(`  issuer:   ${id.issuer}`);
  }
  if (r.token.expiresAt) {
    const left = Math.round((Date.parse(r.token.expiresAt) - now) / 60_000);
    const when = left >= 0 ? `in ${left} min` : `${-left} min ago`;
    lines.push(`  expires:  ${r.token.expiresAt} (${when})${r.token.renewable ? ', renewed automatically' : ''}`);
  }
  const from: Record<WhoamiReport['token']['source'], string> = {
    keychain: `login stored in the ${r.token.location ?? 'OS keychain'}`,
    file: `login stored in ${r.token.location ?? 'a file'}`,
    env: 'PHIGATE_TOKEN (nothing stored)',
    'token-file': `--token-file ${r.token.location ?? ''} (read on every use; nothing stored)`,
  };
  lines.push(`  from:     ${from[r.token.source]}`);
  lines.push(r.gateway.status === 'accepted'
    ? `  gateway:  accepts this identity; ${r.gateway.connections} connection${r.gateway.connections === 1 ? '' : 's'} available (\`phigate connections\`)`
    : `  gateway:  not checked (${r.gateway.message})`);
  return `${lines.join('\n')}\n`;
}
