// Child process of the refresh-lock test: one phigate process renewing a stored login (compiled
// build) against the test's issuer. Prints `waiting` just before asking for a token, then the
// token it got and how many renewals it made.
import { CredentialVault } from '../../dist/src/cli/credentials/vault.js';
import { TokenManager } from '../../dist/src/cli/credentials/token-manager.js';
import { withCredentialLock } from '../../dist/src/cli/credentials/lock.js';
import { credentialKey, StoreUnavailableError } from '../../dist/src/cli/credentials/types.js';

const [home, server, issuerUrl, name, staleMs] = process.argv.slice(2);
const noKeychain = {
  kind: 'keychain',
  description: 'no keychain',
  load: async () => { throw new StoreUnavailableError('no keychain in this test'); },
  save: async () => { throw new StoreUnavailableError('no keychain in this test'); },
  delete: async () => false,
};
const vault = new CredentialVault({ home, keychain: noKeychain });
const tm = new TokenManager({
  server,
  profile: 'default',
  vault,
  renew: async (cred) => {
    const r = await fetch(issuerUrl, { method: 'POST', body: JSON.stringify({ refresh_token: cred.refreshToken, who: name }) });
    if (!r.ok) throw new Error(`issuer said ${r.status}: ${await r.text()}`);
    const j = await r.json();
    return { accessToken: j.access_token, refreshToken: j.refresh_token, expiresIn: 3600 };
  },
  lock: (fn) => withCredentialLock(home, credentialKey(server, 'default'), fn, { staleMs: Number(staleMs), waitMs: 60_000 }),
});
process.stdout.write('waiting\n');
const token = await tm.accessToken();
process.stdout.write(`${JSON.stringify({ token, renewals: tm.renewals })}\n`);
