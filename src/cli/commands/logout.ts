// `phigate logout`: revokes the stored refresh token at the issuer when it offers revocation, then
// deletes the local tokens for (server, profile). Succeeds even when revocation fails, and says so.
import { Command } from 'commander';
import { withGatewayOptions } from '../options.js';
import { resolveProfile, resolveServer, type GlobalOptions } from '../context.js';
import { phigateHome } from '../credentials/paths.js';
import { CredentialVault } from '../credentials/vault.js';
import { canRevoke, issuerConfig, issuerError, revokeToken } from '../credentials/issuer.js';
import type { StoredCredential } from '../credentials/types.js';

export function logoutCommand(): Command {
  return withGatewayOptions(
    new Command('logout').description('revoke your login at the issuer and delete the stored tokens for this gateway and profile'),
  ).action(async (opts: GlobalOptions) => runLogout(opts));
}

const say = (line: string): void => void process.stderr.write(`${line}\n`);

async function runLogout(opts: GlobalOptions): Promise<void> {
  const env = process.env;
  const server = resolveServer(opts, env);
  const profile = resolveProfile(opts, env);
  const vault = new CredentialVault({ home: phigateHome(env) });
  const target = `${server}${profile !== 'default' ? ` (profile ${profile})` : ''}`;
  let loaded;
  try {
    loaded = await vault.load(server, profile);
  } catch (err) {
    say(`phigate: warning: could not read the stored login (${(err as Error).message}); deleting what can be deleted`);
  }
  if (loaded?.cred.refreshToken) say(await revoke(loaded.cred));
  const { deleted, problems } = await vault.delete(server, profile);
  for (const p of problems) say(`phigate: warning: could not delete from ${p}`);
  if (!loaded && deleted.length === 0) {
    process.stdout.write(`Not logged in to ${target}; nothing to do.\n`);
  } else {
    process.stdout.write(`Logged out of ${target}.\n`);
  }
  if (env['PHIGATE_TOKEN']?.trim() || opts.tokenFile) {
    say('note: PHIGATE_TOKEN / --token-file still provide an identity; logout does not touch them');
  }
}

/** One line about the issuer side; never throws: logging out locally must always work. */
async function revoke(cred: StoredCredential): Promise<string> {
  try {
    const config = await issuerConfig(cred.issuer, cred.clientId, { kind: 'public' });
    if (!canRevoke(config)) {
      return `note: ${cred.issuer} offers no token revocation; the refresh token stays valid until it expires`;
    }
    await revokeToken(config, cred.refreshToken ?? '', 'refresh_token');
    return `Revoked the refresh token at ${cred.issuer}.`;
  } catch (err) {
    return `phigate: warning: could not revoke the refresh token at ${cred.issuer} (${issuerError(cred.issuer, err, 'revocation').message}); ` +
      'it stays valid until it expires. Deleting it here anyway.';
  }
}
