// `phigate login | whoami | connections | logout` as real processes against `phigate server --dev`
// (its real OpenID Provider), the browser step driven over HTTP. No OS keychain here: the logins land
// in the plain-text fallback file (the keychain itself is covered by keychain.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type Proc } from '../support/harness.js';
import { driveDeviceVerification } from '../support/device-browser.js';
import { pgClient } from '../support/clients.js';

const pg = inject('pg');
let dir: string;
let servers: Proc[] = [];
let gw: string; // normal dev server: 1-hour access tokens
let shortGw: string; // dev server whose access tokens live 6 s

/** A CLI environment with no keychain, no ambient token or server, and its own PHIGATE_HOME. */
function cliEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PHIGATE_HOME: home,
    PHIGATE_TOKEN: '',
    PHIGATE_SERVER: '',
    PHIGATE_PROFILE: '',
    DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/phigate-test-bus',
    PHIGATE_DEVICE_POLL_INTERVAL: '0.2',
    ...extra,
  };
}

function newHome(): string {
  return mkdtempSync(join(dir, 'home-'));
}

async function startDevServer(name: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const s = run(['server', '--dev', '--config', join(dir, 'p.yaml'), '--listen', '127.0.0.1:0', '--data-dir', join(dir, name)], env);
  servers.push(s);
  return (await s.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
}

async function waitForStderr(p: Proc, re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(p.stderr());
    if (m) return m;
    if (p.proc.exitCode !== null || Date.now() > deadline) {
      throw new Error(`no ${re} on stderr; stdout=${p.stdout()} stderr=${p.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function finished(p: Proc): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** `phigate login --no-browser` with the browser step done as `identity` (or 'abort'). */
async function deviceLogin(server: string, home: string, identity: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const p = run(['login', '--no-browser', '--server', server, ...extra], cliEnv(home, env));
  const [url] = await waitForStderr(p, /http:\/\/127\.0\.0\.1:\d+\/oidc\/device\?user_code=[A-Z-]+/);
  await driveDeviceVerification(url, identity);
  return finished(p);
}

const cli = (args: string[], home: string, env: NodeJS.ProcessEnv = {}) => finished(run(args, cliEnv(home, env)));

function storedFile(home: string): { credentials: Record<string, Record<string, unknown>> } {
  return JSON.parse(readFileSync(join(home, 'credentials.json'), 'utf8')) as { credentials: Record<string, Record<string, unknown>> };
}

async function query(port: number, sql = 'select 1 as one'): Promise<unknown> {
  const c = pgClient(port);
  await c.connect();
  try {
    return (await c.query(sql)).rows[0];
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'phigate-login-'));
  writeFileSync(join(dir, 'p.yaml'), `version: 1
connections:
  ehr:
    upstream: postgres://${pg.roles.trust.user}@127.0.0.1:${pg.port}/${pg.database}
    tls: require
    allow_groups: [engineering, ai-agents]
`);
  [gw, shortGw] = await Promise.all([startDevServer('a'), startDevServer('b', { PHIGATE_DEV_ACCESS_TOKEN_TTL: '6' })]);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
  rmSync(dir, { recursive: true, force: true });
});

describe('phigate login (device flow) against phigate server --dev', () => {
  it('logs in, whoami --json shows the identity, and connect works with the stored token alone', async () => {
    const home = newHome();
    const login = await deviceLogin(gw, home, 'alice');
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toMatch(/open this URL in a browser:\n\n {4}http:\/\/127\.0\.0\.1:\d+\/oidc\/device\?user_code=([A-Z]{4}-[A-Z]{4})\n/);
    expect(login.stderr).toMatch(/check that it shows the code: {2}[A-Z]{4}-[A-Z]{4}/);
    expect(login.stdout).toMatch(new RegExp(`^Logged in to ${gw} as alice \\(human; groups: engineering\\)\\.\\nAccess token valid until \\S+Z, renewed automatically\\.\\nYou may use 1 connection`));
    expect(login.stdout + login.stderr).not.toMatch(/eyJ/); // no token on screen

    const who = await cli(['whoami', '--json'], home);
    expect(who.code, who.stderr).toBe(0);
    const doc = JSON.parse(who.stdout) as Record<string, unknown>;
    expect(doc).toEqual({
      server: gw,
      profile: 'default',
      identity: { name: 'alice', subject: 'alice', kind: 'human', groups: ['engineering'], issuer: `${gw}/oidc`, clientId: 'phigate-cli' },
      token: { source: 'file', location: expect.stringContaining(join(home, 'credentials.json')), expiresAt: expect.stringMatching(/Z$/), renewable: true, grant: 'device_code' },
      gateway: { status: 'accepted', connections: 1 },
    });
    expect(Date.parse((doc['token'] as { expiresAt: string }).expiresAt) - Date.now()).toBeGreaterThan(50 * 60_000);

    const list = await cli(['connections', '--json'], home);
    expect(JSON.parse(list.stdout)).toEqual({ server: gw, connections: [{ name: 'ehr', type: 'postgres', database: pg.database }] });

    // no --server and no PHIGATE_TOKEN: the server comes from the last login, the token from the store
    const connect = run(['connect', 'ehr'], cliEnv(home));
    servers.push(connect);
    const port = Number((await connect.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);
    expect(connect.stdout()).toMatch(/Connected to "ehr" as alice \(engineering\)/);
    expect(await query(port)).toEqual({ one: 1 });
    await connect.stop();
  });

  it('aborting at the verification page is exit 3 with a clear message, and stores nothing', async () => {
    const home = newHome();
    const r = await deviceLogin(gw, home, 'abort');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^phigate: login denied: the request was declined at the verification page$/m);
    expect(r.stderr).toMatch(/^hint: run `phigate login` again/m);
    expect(existsSync(join(home, 'credentials.json'))).toBe(false);
    const who = await cli(['whoami', '--server', gw], home);
    expect(who.code).toBe(3);
    expect(who.stderr).toMatch(/not logged in to http:\/\/127\.0\.0\.1:\d+\nhint: run `phigate login --server/);
  });

  it('logout revokes the refresh token at the issuer, then deletes the local tokens', async () => {
    const home = newHome();
    expect((await deviceLogin(gw, home, 'carol')).code).toBe(0);
    const stored = Object.values(storedFile(home).credentials)[0]!;
    const out = await cli(['logout'], home);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toMatch(/Revoked the refresh token at http:\/\/127\.0\.0\.1:\d+\/oidc\./);
    expect(out.stdout).toBe(`Logged out of ${gw}.\n`);
    expect(storedFile(home).credentials).toEqual({});
    const refresh = await fetch(`${gw}/oidc/token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: 'phigate-cli', grant_type: 'refresh_token', refresh_token: String(stored['refreshToken']) }),
    });
    expect(((await refresh.json()) as { error?: string }).error).toBe('invalid_grant');
    expect((await cli(['whoami'], home)).code).toBe(3);
    const again = await cli(['logout'], home);
    expect(again.stdout).toMatch(/^Not logged in to .*; nothing to do\.$/m);
  });
});

describe('phigate login --client-credentials', () => {
  it('dev-agent is a service identity in ai-agents; a wrong secret is exit 3', async () => {
    const home = newHome();
    const ok = await cli(['login', '--client-credentials', '--server', gw], home, { PHIGATE_CLIENT_ID: 'dev-agent', PHIGATE_CLIENT_SECRET: 'dev-agent-secret' });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^Logged in to .* as dev-agent \(service; groups: ai-agents\)\./);
    expect(ok.stdout + ok.stderr).not.toMatch(/dev-agent-secret/);
    const who = JSON.parse((await cli(['whoami', '--json'], home)).stdout) as { identity: Record<string, unknown>; token: Record<string, unknown> };
    expect(who.identity).toMatchObject({ name: 'dev-agent', kind: 'service', groups: ['ai-agents'] });
    expect(who.token).toMatchObject({ grant: 'client_credentials', renewable: true });

    const bad = await cli(['login', '--client-credentials', '--server', gw], newHome(), { PHIGATE_CLIENT_ID: 'dev-agent', PHIGATE_CLIENT_SECRET: 'wrong' });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^phigate: the identity provider refused the client credentials \(invalid_client/m);
    expect(bad.stderr).toMatch(/^hint: check PHIGATE_CLIENT_ID and PHIGATE_CLIENT_SECRET$/m);
    expect(bad.stderr).not.toMatch(/wrong/);

    const missing = await cli(['login', '--client-credentials', '--server', gw], newHome(), { PHIGATE_CLIENT_ID: '', PHIGATE_CLIENT_SECRET: '' });
    expect(missing.code).toBe(2);
  });

  it('--scope (or PHIGATE_SCOPE) is asked for by name, as Entra ID and Okta need, and kept for renewal', async () => {
    const agent = { PHIGATE_CLIENT_ID: 'dev-agent', PHIGATE_CLIENT_SECRET: 'dev-agent-secret' };
    const scopeOf = (home: string): unknown[] => {
      const file = JSON.parse(readFileSync(join(home, 'credentials.json'), 'utf8')) as { credentials: Record<string, { scopes: string[]; accessToken: string }> };
      return Object.values(file.credentials).map((c) => [c.scopes, (JSON.parse(Buffer.from(c.accessToken.split('.')[1] ?? '', 'base64url').toString()) as { scope?: string }).scope]);
    };
    const flag = newHome();
    const ok = await cli(['login', '--client-credentials', '--scope', 'phigate', '--insecure-storage', '--server', gw], flag, agent);
    expect(ok.code, ok.stderr).toBe(0);
    // The dev issuer grants the resource scope only when it is asked for: the token shows what was sent.
    expect(scopeOf(flag)).toEqual([[['phigate'], 'phigate']]);
    const fromEnv = newHome();
    expect((await cli(['login', '--client-credentials', '--insecure-storage', '--server', gw], fromEnv, { ...agent, PHIGATE_SCOPE: 'phigate' })).code).toBe(0);
    expect(scopeOf(fromEnv)).toEqual([[['phigate'], 'phigate']]);
    const none = newHome();
    expect((await cli(['login', '--client-credentials', '--insecure-storage', '--server', gw], none, agent)).code).toBe(0);
    expect(scopeOf(none)).toEqual([[[], undefined]]);

    const usage = await cli(['login', '--scope', 'phigate', '--server', gw], newHome());
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--scope goes with --client-credentials/);
  });

  it('--token-file stores nothing and says who the gateway takes the token for', async () => {
    const home = newHome();
    const tok = await fetch(`${gw}/oidc/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('dev-agent:dev-agent-secret').toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    const file = join(home, 'workload-token');
    writeFileSync(file, ((await tok.json()) as { access_token: string }).access_token);
    const r = await cli(['login', '--token-file', file, '--server', gw], home);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/accepts the token in .* as dev-agent \(service; groups: ai-agents\).*\n.*Nothing was stored/);
    expect(existsSync(join(home, 'credentials.json'))).toBe(false);
    const who = JSON.parse((await cli(['whoami', '--json', '--token-file', file, '--server', gw], home)).stdout) as { token: Record<string, unknown> };
    expect(who.token).toMatchObject({ source: 'token-file', location: file, renewable: false, grant: null });
  });
});

describe('storage without an OS keychain', () => {
  const agent = { PHIGATE_CLIENT_ID: 'dev-agent', PHIGATE_CLIENT_SECRET: 'dev-agent-secret' };

  it('falls back to a mode-0600 file with one plain-text warning at login; --insecure-storage is silent', async () => {
    const home = newHome();
    const login = await cli(['login', '--client-credentials', '--server', gw], home, agent);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr.match(/warning: no OS keychain available/g)).toHaveLength(1);
    expect(login.stderr).toMatch(/stored in plain text in .*credentials\.json.*--insecure-storage/);
    expect(statSync(join(home, 'credentials.json')).mode & 0o777).toBe(0o600);
    for (const args of [['whoami'], ['connections']]) {
      const r = await cli(args, home);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
    }

    const quiet = newHome();
    const r = await cli(['login', '--client-credentials', '--insecure-storage', '--server', gw], quiet, agent);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(statSync(join(quiet, 'credentials.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(quiet, 'config.json'), 'utf8')).credentials).toEqual({ [`default@${gw}`]: { store: 'file' } });
  });
});

describe('automatic renewal (access tokens that live 6 s)', () => {
  it('a connection made after the access token expired works, after exactly one unnoticed refresh', async () => {
    const home = newHome();
    expect((await deviceLogin(shortGw, home, 'alice')).code).toBe(0);
    const loggedInAt = Date.now();
    const connect = run(['connect', 'ehr'], cliEnv(home, { PHIGATE_DEBUG: '1' }));
    servers.push(connect);
    const port = Number((await connect.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);
    expect(await query(port)).toEqual({ one: 1 });
    await new Promise((r) => setTimeout(r, Math.max(0, loggedInAt + 6_500 - Date.now())));
    // ten client connections at once, all after expiry: one refresh serves them all
    const rows = await Promise.all(Array.from({ length: 10 }, () => query(port, 'select 2 as two')));
    expect(rows).toEqual(Array.from({ length: 10 }, () => ({ two: 2 })));
    const lines = connect.stderr().split('\n').filter(Boolean);
    expect(lines.filter((l) => /renewing the access token/.test(l))).toHaveLength(1);
    // nothing else reached the user's terminal
    expect(lines.filter((l) => !l.startsWith('phigate debug:'))).toEqual([]);
    await connect.stop();
    // the renewed tokens were written back for the next command (rotated refresh token included)
    const renewed = Object.values(storedFile(home).credentials)[0]!;
    expect(renewed['accessTokenObtainedAt']).toBeGreaterThan(loggedInAt + 6_000);
  });

  it('a revoked refresh token is exit 3 telling the user to run `phigate login`', async () => {
    const home = newHome();
    expect((await deviceLogin(shortGw, home, 'alice')).code).toBe(0);
    const file = join(home, 'credentials.json');
    const doc = storedFile(home);
    const c = Object.values(doc.credentials)[0]!;
    const revoke = await fetch(`${shortGw}/oidc/token/revocation`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: 'phigate-cli', token: String(c['refreshToken']), token_type_hint: 'refresh_token' }),
    });
    expect(revoke.status).toBe(200);
    // the access token is due now (as if its 6 s had passed), so the next command must refresh
    c['accessTokenExpiresAt'] = Date.now() - 1_000;
    writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
    const r = await cli(['connections'], home);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^phigate: your login to http:\/\/127\.0\.0\.1:\d+ has expired or was revoked$/m);
    expect(r.stderr).toMatch(/^hint: run `phigate login --server http:\/\/127\.0\.0\.1:\d+`$/m);
  });
});
