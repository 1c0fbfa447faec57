// Token storage and renewal without a network: where a login is stored (keychain, plain-text
// fallback, --insecure-storage), per server+profile isolation, logout, resolveContext precedence,
// renewal on a fake clock over a 2-hour session, single-flight, and the device-flow polling rules.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResponseBodyError } from 'openid-client';
import { CredentialVault, plainTextWarning } from '../../src/cli/credentials/vault.js';
import { FileStore } from '../../src/cli/credentials/file-store.js';
import { credentialKey, StoreUnavailableError, type SecretStore, type StoredCredential } from '../../src/cli/credentials/types.js';
import { readConfig, type CliConfig as CliConfigShape } from '../../src/cli/credentials/config.js';
import { phigateHome } from '../../src/cli/credentials/paths.js';
import { needsRenewal, renewalMarginMs, TokenManager } from '../../src/cli/credentials/token-manager.js';
import { CredentialLockBusy } from '../../src/cli/credentials/lock.js';
import { pollDeviceToken } from '../../src/cli/credentials/device-flow.js';
import type { Tokens } from '../../src/cli/credentials/issuer.js';
import { resolveContext, resolveServer } from '../../src/cli/context.js';
import { PhigateError } from '../../src/cli/errors.js';
import { renderConnections } from '../../src/cli/commands/connections.js';

/** An in-memory secret store; `down` makes it behave like a missing Secret Service. */
class MemStore implements SecretStore {
  readonly entries = new Map<string, StoredCredential>();
  calls = 0;
  down?: string;
  constructor(readonly kind: 'keychain' | 'file', readonly description = `mem ${kind}`) {}
  private check(): void {
    this.calls++;
    if (this.down) throw new StoreUnavailableError(this.down);
  }
  async load(key: string): Promise<StoredCredential | undefined> {
    this.check();
    const c = this.entries.get(key);
    return c ? structuredClone(c) : undefined;
  }
  async save(key: string, cred: StoredCredential): Promise<void> {
    this.check();
    this.entries.set(key, structuredClone(cred));
  }
  async delete(key: string): Promise<boolean> {
    this.check();
    return this.entries.delete(key);
  }
}

function cred(over: Partial<StoredCredential> = {}): StoredCredential {
  return {
    version: 1,
    server: 'http://gw.test:7432',
    profile: 'default',
    issuer: 'http://gw.test:7432/oidc',
    clientId: 'phigate-cli',
    grant: 'device_code',
    scopes: ['openid', 'offline_access'],
    accessToken: 'at-1',
    accessTokenObtainedAt: 0,
    accessTokenExpiresAt: 3_600_000,
    refreshToken: 'rt-1',
    ...over,
  };
}

const mkdirp = (dir: string): string => {
  mkdirSync(dir, { recursive: true });
  return dir;
};

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'phigate-home-'));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

describe('CredentialVault: where a login is stored', () => {
  it('uses the keychain when it works: nothing in the file, the choice remembered in config.json', async () => {
    const keychain = new MemStore('keychain');
    const vault = new CredentialVault({ home, keychain });
    const r = await vault.saveLogin(cred());
    expect(r.store.kind).toBe('keychain');
    expect(r.fallbackReason).toBeUndefined();
    expect(keychain.entries.has('default@http://gw.test:7432')).toBe(true);
    expect(existsSync(join(home, 'credentials.json'))).toBe(false);
    const cfg = readConfig(home);
    expect(cfg.credentials['default@http://gw.test:7432']).toEqual({ store: 'keychain' });
    expect(cfg.profiles['default']).toEqual({ server: 'http://gw.test:7432' });
    // config.json holds no secret
    expect(readFileSync(join(home, 'config.json'), 'utf8')).not.toMatch(/at-1|rt-1/);
    expect((await vault.load('http://gw.test:7432', 'default'))?.cred.accessToken).toBe('at-1');
  });

  it('falls back to a mode-0600 file with a reason when the keychain does not work', async () => {
    const keychain = new MemStore('keychain');
    keychain.down = 'no Secret Service (no D-Bus session bus)';
    const vault = new CredentialVault({ home, keychain });
    const r = await vault.saveLogin(cred());
    expect(r.store.kind).toBe('file');
    expect(r.fallbackReason).toBe('no Secret Service (no D-Bus session bus)');
    const path = join(home, 'credentials.json');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(path, 'utf8')).credentials['default@http://gw.test:7432'].refreshToken).toBe('rt-1');
    expect(plainTextWarning(path, r.fallbackReason!)).toMatch(/plain text.*--insecure-storage/);
    // later reads go straight to the file: the broken keychain is not asked again
    const calls = keychain.calls;
    expect((await vault.load('http://gw.test:7432', 'default'))?.store.kind).toBe('file');
    expect(keychain.calls).toBe(calls);
  });

  it('--insecure-storage writes the file silently without touching the keychain', async () => {
    const keychain = new MemStore('keychain');
    const vault = new CredentialVault({ home, keychain });
    const r = await vault.saveLogin(cred(), { insecureStorage: true });
    expect(r).toMatchObject({ store: { kind: 'file' } });
    expect(r.fallbackReason).toBeUndefined();
    expect(keychain.calls).toBe(0);
  });

  it('a login that moves from the keychain to the file leaves nothing behind in the keychain', async () => {
    const keychain = new MemStore('keychain');
    const vault = new CredentialVault({ home, keychain });
    await vault.saveLogin(cred());
    await vault.saveLogin(cred({ accessToken: 'at-2' }), { insecureStorage: true });
    expect(keychain.entries.size).toBe(0);
    expect((await vault.load('http://gw.test:7432', 'default'))?.cred.accessToken).toBe('at-2');
  });

  it('keeps (server, profile) pairs apart, and logout deletes one pair from both stores', async () => {
    const keychain = new MemStore('keychain');
    const file = new FileStore(home);
    const vault = new CredentialVault({ home, keychain, file });
    await vault.saveLogin(cred({ accessToken: 'a' }));
    await vault.saveLogin(cred({ server: 'http://other:1', accessToken: 'b' }));
    await vault.saveLogin(cred({ profile: 'work', accessToken: 'c' }), { insecureStorage: true });
    expect((await vault.load('http://gw.test:7432', 'default'))?.cred.accessToken).toBe('a');
    expect((await vault.load('http://other:1', 'default'))?.cred.accessToken).toBe('b');
    expect((await vault.load('http://gw.test:7432', 'work'))?.cred.accessToken).toBe('c');
    expect(await vault.load('http://other:1', 'work')).toBeUndefined();
    expect(readConfig(home).profiles).toEqual({ default: { server: 'http://other:1' }, work: { server: 'http://gw.test:7432' } });

    // a stray copy in the other store (e.g. from an older login) goes too
    await file.save(credentialKey('http://gw.test:7432', 'default'), cred({ accessToken: 'stray' }));
    const out = await vault.delete('http://gw.test:7432', 'default');
    expect(out.deleted.sort()).toEqual(['file', 'keychain']);
    expect(await keychain.load(credentialKey('http://gw.test:7432', 'default'))).toBeUndefined();
    expect(await file.load(credentialKey('http://gw.test:7432', 'default'))).toBeUndefined();
    expect(await vault.load('http://gw.test:7432', 'default')).toBeUndefined();
    expect((await vault.load('http://other:1', 'default'))?.cred.accessToken).toBe('b');
    expect((await vault.load('http://gw.test:7432', 'work'))?.cred.accessToken).toBe('c');
  });

  it('logout from the file still works when the keychain cannot be reached', async () => {
    const keychain = new MemStore('keychain');
    keychain.down = 'no Secret Service';
    const vault = new CredentialVault({ home, keychain });
    await vault.saveLogin(cred());
    const out = await vault.delete('http://gw.test:7432', 'default');
    expect(out).toEqual({ deleted: ['file'], problems: [] });
  });

  it('a login kept in a keychain that cannot be reached now is exit 3 with what to do', async () => {
    const keychain = new MemStore('keychain');
    const vault = new CredentialVault({ home, keychain });
    await vault.saveLogin(cred());
    keychain.down = 'no Secret Service (no D-Bus session bus)';
    await expect(vault.load('http://gw.test:7432', 'default')).rejects.toMatchObject({
      exitCode: 3, message: /is in the mem keychain, which cannot be reached here \(no Secret Service/, hint: /--insecure-storage/,
    });
  });

  it('without a record in config.json finds a login in the file, else the keychain', async () => {
    const keychain = new MemStore('keychain');
    const vault = new CredentialVault({ home, keychain });
    await keychain.save(credentialKey('http://gw.test:7432', 'default'), cred({ accessToken: 'from-keychain' }));
    expect((await vault.load('http://gw.test:7432', 'default'))?.cred.accessToken).toBe('from-keychain');
    keychain.down = 'gone';
    expect(await vault.load('http://gw.test:7432', 'default')).toBeUndefined();
  });

  it('PHIGATE_HOME, else the platform config directory; an existing ~/.config/phigate keeps being used', () => {
    expect(phigateHome({ PHIGATE_HOME: '/x', XDG_CONFIG_HOME: '/y' }, 'darwin')).toBe('/x');
    expect(phigateHome({ XDG_CONFIG_HOME: '/y' }, 'linux')).toBe('/y/phigate');
    expect(phigateHome({ HOME: home }, 'linux')).toBe(join(home, '.config', 'phigate'));
    expect(phigateHome({ HOME: home }, 'darwin')).toBe(join(home, 'Library', 'Preferences', 'phigate'));
    expect(phigateHome({ HOME: home, APPDATA: join(home, 'AppData') }, 'win32')).toBe(join(home, 'AppData', 'phigate', 'Config'));
    // A user of an earlier version on macOS: their profiles are in ~/.config/phigate, and stay found.
    writeFileSync(join(mkdirp(join(home, '.config', 'phigate')), 'config.json'), '{"profiles":{},"credentials":{}}\n');
    expect(phigateHome({ HOME: home }, 'darwin')).toBe(join(home, '.config', 'phigate'));
    writeFileSync(join(mkdirp(join(home, 'Library', 'Preferences', 'phigate')), 'config.json'), '{}');
    expect(phigateHome({ HOME: home }, 'darwin')).toBe(join(home, 'Library', 'Preferences', 'phigate'));
  });
});

describe('the settings file (config.json through conf)', () => {
  it('reads and updates the file earlier versions wrote, keeping what it does not know', async () => {
    // Exactly what the previous writer produced: two-space JSON, keys with dots and slashes.
    writeFileSync(join(home, 'config.json'), `${JSON.stringify({
      profiles: { default: { server: 'https://gw.example.com' }, work: { server: 'http://10.0.0.5:7432' } },
      credentials: { 'default@https://gw.example.com': { store: 'file' }, 'work@http://10.0.0.5:7432': { store: 'keychain' } },
    }, null, 2)}\n`);
    writeFileSync(join(home, 'credentials.json'), JSON.stringify({ version: 1, credentials: { 'default@https://gw.example.com': cred({ server: 'https://gw.example.com' }) } }));
    expect(readConfig(home).profiles['work']).toEqual({ server: 'http://10.0.0.5:7432' });
    // The login made with the earlier version is found where the file says.
    const vault = new CredentialVault({ home, keychain: new MemStore('keychain') });
    expect((await vault.load('https://gw.example.com', 'default'))?.cred.accessToken).toBe('at-1');
    expect(resolveServer({ profile: 'work' }, { PHIGATE_HOME: home })).toBe('http://10.0.0.5:7432');
    // A new login updates the file in place; the other entries stay.
    await vault.saveLogin(cred({ server: 'http://gw.test:7432', profile: 'lab' }), { insecureStorage: true });
    const after = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as CliConfigShape;
    expect(after.profiles).toEqual({ default: { server: 'https://gw.example.com' }, work: { server: 'http://10.0.0.5:7432' }, lab: { server: 'http://gw.test:7432' } });
    expect(after.credentials).toEqual({
      'default@https://gw.example.com': { store: 'file' }, 'work@http://10.0.0.5:7432': { store: 'keychain' }, 'lab@http://gw.test:7432': { store: 'file' },
    });
    expect(statSync(join(home, 'config.json')).mode & 0o777).toBe(0o644);
  });

  it('a file that is not JSON or breaks the schema is an error naming the file and what to do', () => {
    writeFileSync(join(home, 'config.json'), '{"profiles": ');
    let err: unknown;
    try {
      readConfig(home);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'SettingsFileError', exitCode: 1, message: `${join(home, 'config.json')}: not valid JSON` });
    expect((err as PhigateError).hint).toMatch(/fix or delete it/);
    writeFileSync(join(home, 'config.json'), '{"credentials": {"a@b": {"store": "floppy"}}}');
    expect(() => readConfig(home)).toThrow(/config\.json: not a phigate settings file \(`credentials\/a@b\/store` must be keychain or file\)/);
  });

  it('reading before any login creates nothing', () => {
    const fresh = join(home, 'never');
    expect(readConfig(fresh)).toEqual({ profiles: {}, credentials: {} });
    expect(existsSync(fresh)).toBe(false);
  });
});

describe('resolveContext: which token and which server', () => {
  const stored = (): CredentialVault => {
    const keychain = new MemStore('keychain');
    return new CredentialVault({ home, keychain });
  };

  it('--token-file beats PHIGATE_TOKEN beats the stored login; the file is re-read on every use', async () => {
    const vault = stored();
    await vault.saveLogin(cred({ server: 'http://gw.test:7432', accessTokenExpiresAt: Date.now() + 3_600_000, accessTokenObtainedAt: Date.now() }));
    const file = join(home, 'tok');
    writeFileSync(file, 'from-file\n');
    const env = { PHIGATE_HOME: home, PHIGATE_TOKEN: 'from-env' };
    const a = resolveContext({ tokenFile: file, server: 'http://gw.test:7432' }, env, { vault });
    expect(a.source).toBe('token-file');
    expect(await a.token()).toBe('from-file');
    writeFileSync(file, 'rotated');
    expect(await a.token()).toBe('rotated');
    const b = resolveContext({ server: 'http://gw.test:7432' }, env, { vault });
    expect(b.source).toBe('env');
    expect(await b.token()).toBe('from-env');
    const c = resolveContext({ server: 'http://gw.test:7432' }, { PHIGATE_HOME: home }, { vault });
    expect(c.source).toBe('stored');
    expect(await c.token()).toBe('at-1');
  });

  it('server: --server, else PHIGATE_SERVER, else the profile\'s last login, else 127.0.0.1:7432', async () => {
    const vault = stored();
    await vault.saveLogin(cred({ server: 'http://saved:1' }));
    await vault.saveLogin(cred({ server: 'http://saved-work:2', profile: 'work' }));
    const env = { PHIGATE_HOME: home };
    expect(resolveContext({ server: 'https://flag/' }, { ...env, PHIGATE_SERVER: 'http://env:1' }).serverUrl).toBe('https://flag');
    expect(resolveContext({}, { ...env, PHIGATE_SERVER: 'http://env:1' }).serverUrl).toBe('http://env:1');
    expect(resolveContext({}, env).serverUrl).toBe('http://saved:1');
    expect(resolveContext({ profile: 'work' }, env).serverUrl).toBe('http://saved-work:2');
    expect(resolveContext({}, { ...env, PHIGATE_PROFILE: 'work' }).profile).toBe('work');
    expect(resolveContext({ profile: 'none' }, env).serverUrl).toBe('http://127.0.0.1:7432');
    expect(() => resolveContext({ server: 'ftp://x' }, env)).toThrow(PhigateError);
  });

  it('not logged in: exit 3 with a hint to run phigate login', async () => {
    const ctx = resolveContext({ server: 'http://gw.test:7432' }, { PHIGATE_HOME: home }, { vault: stored() });
    await expect(ctx.token()).rejects.toMatchObject({ exitCode: 3, message: /not logged in to http:\/\/gw\.test:7432/, hint: /phigate login --server http:\/\/gw\.test:7432/ });
    const missing = resolveContext({ tokenFile: join(home, 'nope') }, { PHIGATE_HOME: home });
    await expect(missing.token()).rejects.toMatchObject({ exitCode: 3, message: /cannot read token file/ });
  });
});

/** A TokenManager over a fake clock and a fake issuer that rotates refresh tokens. */
function managed(initial: StoredCredential, lifetimeS: number) {
  let clock = initial.accessTokenObtainedAt;
  const keychain = new MemStore('keychain');
  const vault = new CredentialVault({ home, keychain });
  let n = 1;
  const issued: string[] = [];
  const renewCalls: StoredCredential[] = [];
  const issuer = {
    refreshToken: initial.refreshToken,
    fail: undefined as Error | undefined,
    delayMs: 0,
  };
  const renew = async (c: StoredCredential): Promise<Tokens> => {
    renewCalls.push(c);
    if (issuer.delayMs) await new Promise((r) => setTimeout(r, issuer.delayMs));
    if (issuer.fail) throw issuer.fail;
    if (c.refreshToken !== issuer.refreshToken) throw new ResponseBodyError('spent', { cause: { error: 'invalid_grant' }, response: new Response(null, { status: 400 }) });
    n++;
    issuer.refreshToken = `rt-${n}`;
    issued.push(`at-${n}`);
    return { accessToken: `at-${n}`, expiresIn: lifetimeS, refreshToken: issuer.refreshToken };
  };
  const lock = { busy: false };
  const tm = (): TokenManager => new TokenManager({
    server: initial.server, profile: initial.profile, vault, renew, now: () => clock,
    lock: (fn) => (lock.busy ? Promise.reject(new CredentialLockBusy('/tmp/x.lock.d', 60_000)) : fn()),
  });
  return {
    vault, keychain, issuer, renewCalls, issued, tm, lock,
    advance: (ms: number) => (clock += ms),
    now: () => clock,
  };
}

describe('TokenManager: renewal before expiry on a fake clock', () => {
  it('renews with less than 10 % of the lifetime (at most 60 s) left', () => {
    expect(renewalMarginMs({ accessTokenObtainedAt: 0, accessTokenExpiresAt: 3_600_000 })).toBe(60_000);
    expect(renewalMarginMs({ accessTokenObtainedAt: 0, accessTokenExpiresAt: 8_000 })).toBe(800);
    expect(needsRenewal({ accessTokenObtainedAt: 0, accessTokenExpiresAt: 3_600_000 }, 3_539_000)).toBe(false);
    expect(needsRenewal({ accessTokenObtainedAt: 0, accessTokenExpiresAt: 3_600_000 }, 3_540_000)).toBe(true);
  });

  it('a 2-hour `phigate connect` with 5-minute tokens: every stream gets a live token, one renewal per token lifetime', async () => {
    const t0 = Date.parse('2026-01-01T09:00:00Z');
    const f = managed(cred({ accessTokenObtainedAt: t0, accessTokenExpiresAt: t0 + 300_000 }), 300);
    await f.vault.saveLogin(cred({ accessTokenObtainedAt: t0, accessTokenExpiresAt: t0 + 300_000 }));
    const tm = f.tm();
    const seen = new Set<string>();
    // a new client connection every 20 s for two hours
    for (let t = 0; t <= 2 * 3600_000; t += 20_000) {
      const token = await tm.accessToken();
      seen.add(token);
      const stored = (await f.vault.load('http://gw.test:7432', 'default'))!.cred;
      expect(stored.accessToken).toBe(token);
      expect(stored.accessTokenExpiresAt - f.now()).toBeGreaterThan(renewalMarginMs(stored));
      f.advance(20_000);
    }
    // 5-minute tokens are due 30 s early; the first stream after that (every 20 s) renews: one
    // renewal per 280 s -> 25 in two hours, none of them visible to the streams
    expect(tm.renewals).toBe(25);
    expect(f.renewCalls).toHaveLength(25);
    expect(seen.size).toBe(26);
    // every renewal used the refresh token the previous one returned (rotation kept in the store)
    expect(f.renewCalls.map((c) => c.refreshToken)).toEqual(Array.from({ length: 25 }, (_, i) => `rt-${i + 1}`));
  });

  it('50 streams opening at once when the token is due cause one renewal', async () => {
    const f = managed(cred({ accessTokenObtainedAt: 0, accessTokenExpiresAt: 60_000 }), 60);
    await f.vault.saveLogin(cred({ accessTokenObtainedAt: 0, accessTokenExpiresAt: 60_000 }));
    f.issuer.delayMs = 20;
    f.advance(59_000);
    const tm = f.tm();
    const tokens = await Promise.all(Array.from({ length: 50 }, () => tm.accessToken()));
    expect(new Set(tokens)).toEqual(new Set(['at-2']));
    expect(f.renewCalls).toHaveLength(1);
  });

  it('adopts tokens another phigate process renewed instead of spending a used refresh token', async () => {
    const f = managed(cred(), 3600);
    await f.vault.saveLogin(cred());
    const mine = f.tm();
    expect(await mine.accessToken()).toBe('at-1'); // loaded and cached
    f.advance(3_590_000);
    const other = f.tm();
    expect(await other.accessToken()).toBe('at-2'); // the other process renewed and rotated rt-1 -> rt-2
    expect(await mine.accessToken()).toBe('at-2');
    expect(f.renewCalls).toHaveLength(1);
  });

  it('a refused refresh (revoked or expired login) is exit 3 telling the user to run phigate login', async () => {
    const f = managed(cred(), 3600);
    await f.vault.saveLogin(cred());
    f.issuer.refreshToken = 'revoked-elsewhere';
    f.advance(3_599_000);
    const err = await f.tm().accessToken().catch((e: unknown) => e as PhigateError);
    expect(err).toBeInstanceOf(PhigateError);
    expect(err).toMatchObject({ exitCode: 3, message: /expired or was revoked/, hint: /run `phigate login/ });
  });

  it('an unreachable issuer: keeps using the current token until it expires, then exit 5', async () => {
    const f = managed(cred(), 3600);
    await f.vault.saveLogin(cred());
    f.issuer.fail = new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    f.advance(3_570_000);
    const tm = f.tm();
    expect(await tm.accessToken()).toBe('at-1');
    f.advance(60_000);
    await expect(tm.accessToken()).rejects.toMatchObject({ exitCode: 5, message: /identity provider unreachable/ });
    f.issuer.fail = undefined;
    expect(await tm.accessToken()).toBe('at-2');
  });

  it('another process renewing for too long: keeps using the current token until it expires, then says who holds the lock', async () => {
    const f = managed(cred(), 3600);
    await f.vault.saveLogin(cred());
    f.lock.busy = true;
    f.advance(3_570_000);
    const tm = f.tm();
    expect(await tm.accessToken()).toBe('at-1');
    f.advance(60_000);
    await expect(tm.accessToken()).rejects.toMatchObject({ name: 'CredentialLockBusy', exitCode: 1, hint: /x\.lock\.d/ });
    expect(f.renewCalls).toHaveLength(0);
  });

  it('a login without a refresh token works until it expires, then exit 3', async () => {
    const c = cred({ refreshToken: undefined });
    const f = managed(c, 3600);
    await f.vault.saveLogin(c);
    const tm = f.tm();
    f.advance(3_590_000);
    expect(await tm.accessToken()).toBe('at-1');
    f.advance(20_000);
    await expect(tm.accessToken()).rejects.toMatchObject({ exitCode: 3, hint: /phigate login/ });
    expect(f.renewCalls).toHaveLength(0);
  });
});

describe('device flow polling (RFC 8628 §3.5)', () => {
  const oauthError = (error: string): ResponseBodyError =>
    new ResponseBodyError(error, { cause: { error }, response: new Response(null, { status: 400 }) });

  function script(answers: Array<string | Tokens | Error>) {
    let clock = 0;
    const sleeps: number[] = [];
    const lines: string[] = [];
    let i = 0;
    return {
      sleeps, lines,
      opts: {
        now: () => clock,
        sleep: async (ms: number) => {
          sleeps.push(ms);
          clock += ms;
        },
        say: (l: string) => lines.push(l),
        request: async (): Promise<Tokens> => {
          const a = answers[i++];
          if (a === undefined) throw new Error('no more answers');
          if (typeof a === 'string') throw oauthError(a);
          if (a instanceof Error) throw a;
          return a;
        },
      },
    };
  }

  it('waits the server interval and keeps polling while authorization is pending', async () => {
    const s = script(['authorization_pending', 'authorization_pending', { accessToken: 'x', expiresIn: 60 }]);
    const r = await pollDeviceToken({ intervalS: 2, expiresInS: 600, ...s.opts });
    expect(r.tokens.accessToken).toBe('x');
    expect(s.sleeps).toEqual([2000, 2000, 2000]);
  });

  it('slow_down adds 5 s to the interval for good, and says so once per slow_down', async () => {
    const s = script(['authorization_pending', 'slow_down', 'authorization_pending', 'slow_down', { accessToken: 'x' }]);
    const r = await pollDeviceToken({ intervalS: 1, expiresInS: 600, ...s.opts });
    expect(s.sleeps).toEqual([1000, 1000, 6000, 6000, 11000]);
    expect(r.intervalS).toBe(11);
    expect(s.lines).toEqual([expect.stringMatching(/poll less often; now every 6 s/), expect.stringMatching(/now every 11 s/)]);
  });

  it('without a server interval: the fallback (tests), else the RFC default of 5 s', async () => {
    const a = script([{ accessToken: 'x' }]);
    await pollDeviceToken({ expiresInS: 600, fallbackIntervalS: 0.2, ...a.opts });
    expect(a.sleeps).toEqual([200]);
    const b = script([{ accessToken: 'x' }]);
    await pollDeviceToken({ expiresInS: 600, ...b.opts });
    expect(b.sleeps).toEqual([5000]);
    const c = script([{ accessToken: 'x' }]);
    await pollDeviceToken({ intervalS: 3, expiresInS: 600, fallbackIntervalS: 0.2, ...c.opts });
    expect(c.sleeps).toEqual([3000]);
  });

  it('access_denied and expired_token end the login with exit 3 and a one-line reason', async () => {
    const denied = script(['authorization_pending', 'access_denied']);
    await expect(pollDeviceToken({ intervalS: 1, expiresInS: 600, ...denied.opts }))
      .rejects.toMatchObject({ exitCode: 3, message: 'login denied: the request was declined at the verification page' });
    const expired = script(['expired_token']);
    await expect(pollDeviceToken({ intervalS: 1, expiresInS: 600, ...expired.opts }))
      .rejects.toMatchObject({ exitCode: 3, message: /login expired: the code was not confirmed in time/ });
  });

  it('stops at the code\'s own deadline without asking again; network errors in between are retried', async () => {
    const s = script([new TypeError('fetch failed'), 'authorization_pending', 'authorization_pending']);
    await expect(pollDeviceToken({ intervalS: 4, expiresInS: 10, ...s.opts })).rejects.toMatchObject({ exitCode: 3, message: /login expired/ });
    expect(s.sleeps).toEqual([4000, 4000, 4000]);
  });
});

describe('connections output', () => {
  it('renders a table, or says there is nothing', () => {
    expect(renderConnections({ server: 'http://s', connections: [{ name: 'ehr', type: 'postgres', database: 'ehr_main' }, { name: 'billing-db', type: 'postgres', database: 'b' }] }))
      .toBe('NAME        TYPE      DATABASE\nehr         postgres  ehr_main\nbilling-db  postgres  b\n');
    expect(renderConnections({ server: 'http://s', connections: [] })).toBe('You may not use any connection on http://s.\n');
  });
});
