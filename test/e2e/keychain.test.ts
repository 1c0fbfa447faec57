// `phigate login` against a real Secret Service: each CLI run happens inside its own D-Bus session
// with gnome-keyring unlocked over a keyring kept in a temporary home, so the tokens must land in
// (and be read from, and be deleted from) the keychain, never in the plain-text file. Needs D-Bus,
// gnome-keyring and secret-tool (scripts/test-prereqs.mjs); without them the test fails naming the packages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, run, type Proc } from '../support/harness.js';
import { missingTools } from '../support/prereqs.js';


let dir: string;
let server: Proc | undefined;
let gw: string;
let keyringHome: string;
let phigateHome: string;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` in a fresh D-Bus session whose gnome-keyring is unlocked (password "pw"). The keyring
 * file lives under keyringHome, so what one session stores the next one sees, as on a desktop.
 */
function inKeyringSession(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const script = 'echo pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 97; exec "$@"';
  return new Promise((resolve, reject) => {
    const child = spawn('dbus-run-session', ['--', 'sh', '-c', script, 'sh', ...argv], {
      env: {
        PATH: process.env['PATH'],
        HOME: keyringHome,
        XDG_DATA_HOME: join(keyringHome, 'data'),
        XDG_RUNTIME_DIR: join(keyringHome, 'run'),
        XDG_CONFIG_HOME: join(keyringHome, 'config'),
        PHIGATE_HOME: phigateHome,
        NO_COLOR: '1',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // dbus-daemon and gnome-keyring talk about themselves on stderr; keep only phigate's lines
      const own = stderr.split('\n').filter((l) => /^(phigate|hint)/.test(l)).join('\n');
      resolve({ code, stdout, stderr: own });
    });
  });
}

const phigate = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> => inKeyringSession([process.execPath, BIN, ...args], env);

beforeAll(async () => {
  const missing = missingTools('dbus-run-session', 'gnome-keyring-daemon', 'secret-tool');
  if (missing) throw new Error(`the keychain test needs a real Secret Service:\n${missing}`);
  dir = mkdtempSync(join(tmpdir(), 'phigate-keychain-'));
  keyringHome = join(dir, 'keyring-home');
  phigateHome = join(dir, 'phigate-home');
  mkdirSync(join(keyringHome, 'run'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'p.yaml'), 'version: 1\nconnections:\n  ehr:\n    upstream: postgres://u@127.0.0.1:1/ehr\n    tls: disable\n    allow_groups: [engineering, ai-agents]\n');
  server = run(['server', '--dev', '--config', join(dir, 'p.yaml'), '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')]);
  gw = (await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
});

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('OS keychain (gnome-keyring Secret Service over D-Bus)', () => {
  it('login stores the tokens in the keychain, not the file; whoami reads them there; logout deletes them', async () => {
    const agent = { PHIGATE_CLIENT_ID: 'dev-agent', PHIGATE_CLIENT_SECRET: 'dev-agent-secret' };
    const login = await phigate(['login', '--client-credentials', '--server', gw], agent);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/Logged in to .* as dev-agent \(service; groups: ai-agents\)/);
    expect(login.stderr).not.toMatch(/plain text/);
    expect(existsSync(join(phigateHome, 'credentials.json'))).toBe(false);
    const config = JSON.parse(readFileSync(join(phigateHome, 'config.json'), 'utf8')) as { credentials: Record<string, unknown> };
    expect(config.credentials).toEqual({ [`default@${gw}`]: { store: 'keychain' } });

    // an independent Secret Service client finds the entry
    const lookup = await inKeyringSession(['secret-tool', 'lookup', 'service', 'phigate', 'username', `default@${gw}`]);
    expect(lookup.code).toBe(0);
    const entry = JSON.parse(lookup.stdout) as Record<string, unknown>;
    expect(entry).toMatchObject({ version: 1, server: gw, profile: 'default', grant: 'client_credentials', clientId: 'dev-agent' });
    expect(typeof entry['accessToken']).toBe('string');

    const who = await phigate(['whoami', '--json']);
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({
      server: gw,
      identity: { name: 'dev-agent', kind: 'service', groups: ['ai-agents'] },
      token: { source: 'keychain', location: 'OS keychain (service "phigate")', grant: 'client_credentials' },
      gateway: { status: 'accepted', connections: 1 },
    });

    const out = await phigate(['logout']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe(`Logged out of ${gw}.\n`);
    const gone = await inKeyringSession(['secret-tool', 'lookup', 'service', 'phigate', 'username', `default@${gw}`]);
    expect(gone.code).not.toBe(0);
    expect(gone.stdout).toBe('');
    expect((await phigate(['whoami'])).code).toBe(3);
  });

  it('with the same keychain available, --insecure-storage still chooses the file', async () => {
    const agent = { PHIGATE_CLIENT_ID: 'dev-agent', PHIGATE_CLIENT_SECRET: 'dev-agent-secret' };
    const login = await phigate(['login', '--client-credentials', '--insecure-storage', '--profile', 'ci', '--server', gw], agent);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toBe('');
    expect(Object.keys((JSON.parse(readFileSync(join(phigateHome, 'credentials.json'), 'utf8')) as { credentials: object }).credentials))
      .toEqual([`ci@${gw}`]);
    const lookup = await inKeyringSession(['secret-tool', 'lookup', 'service', 'phigate', 'username', `ci@${gw}`]);
    expect(lookup.stdout).toBe('');
  });
});
