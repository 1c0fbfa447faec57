// Two real phigate processes renewing one stored login: the refresh lock lets exactly one of them
// spend the refresh token, however long the issuer takes (the holder keeps its lock fresh), and a
// holder that dies mid-refresh does not block the other for good (its lock goes stale).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { CredentialVault } from '../../src/cli/credentials/vault.js';
import { StoreUnavailableError, type SecretStore, type StoredCredential } from '../../src/cli/credentials/types.js';

const CHILD = join(import.meta.dirname, 'refresh-child.mjs');
const BUILT = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli', 'credentials', 'lock.js');
const SERVER = 'http://gw.test:7432';
// Short, to keep the test short, yet with room for a loaded machine: the holder refreshes its lock every second.
const STALE_MS = 4_000;

/** A refresh-token endpoint that rotates tokens, answers when the test says, and notices reuse. */
class Issuer {
  readonly requests: { who: string; refreshToken: string }[] = [];
  readonly reused: string[] = [];
  private live = new Set(['rt-1']);
  private n = 1;
  private readonly pending: { res: ServerResponse; refreshToken: string }[] = [];
  private readonly arrivals: (() => void)[] = [];
  server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.onRequest(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/token`;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) body += chunk;
    const { refresh_token: refreshToken, who } = JSON.parse(body) as { refresh_token: string; who: string };
    this.requests.push({ who, refreshToken });
    this.pending.push({ res, refreshToken });
    this.arrivals.shift()?.();
  }

  /** Resolves when `count` requests have arrived. */
  async arrived(count: number): Promise<void> {
    while (this.requests.length < count) await new Promise<void>((r) => this.arrivals.push(r));
  }

  /** Answers every request held so far; a spent refresh token is refused, as real issuers do. */
  answerAll(): void {
    for (const { res, refreshToken } of this.pending.splice(0)) {
      if (!this.live.delete(refreshToken)) {
        this.reused.push(refreshToken);
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
        continue;
      }
      this.n++;
      this.live.add(`rt-${this.n}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `at-${this.n}`, refresh_token: `rt-${this.n}` }));
    }
  }

  /** Drops the held requests unanswered: the issuer never finished them, so their tokens are not spent. */
  dropAll(): void {
    for (const { res } of this.pending.splice(0)) res.destroy();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

interface Child {
  proc: ChildProcess;
  out: () => string;
  waitFor(re: RegExp): Promise<void>;
  exited: Promise<number | null>;
}

function child(home: string, issuer: Issuer, name: string): Child {
  const proc = spawn(process.execPath, [CHILD, home, SERVER, issuer.url, name, String(STALE_MS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    out: () => out,
    exited,
    waitFor: (re) => new Promise((res, rej) => {
      const timer = setInterval(() => {
        if (re.test(out)) {
          clearInterval(timer);
          res();
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          clearInterval(timer);
          rej(new Error(`${name} exited before ${re}: ${out} ${err}`));
        }
      }, 20);
    }),
  };
}

const result = (c: Child): { token: string; renewals: number } => JSON.parse(c.out().split('\n').filter(Boolean).at(-1)!) as { token: string; renewals: number };

const noKeychain: SecretStore = {
  kind: 'keychain',
  description: 'no keychain',
  load: async () => { throw new StoreUnavailableError('none'); },
  save: async () => { throw new StoreUnavailableError('none'); },
  delete: async () => false,
};

const dueCred: StoredCredential = {
  version: 1, server: SERVER, profile: 'default', issuer: 'http://gw.test:7432/oidc', clientId: 'phigate-cli',
  grant: 'device_code', scopes: ['openid', 'offline_access'], accessToken: 'at-1',
  // Expired long ago: both processes must renew before they can use it.
  accessTokenObtainedAt: 0, accessTokenExpiresAt: 1_000, refreshToken: 'rt-1',
};

let home: string;
let issuer: Issuer;
const children: Child[] = [];
beforeEach(async () => {
  if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` first (npm test does)`);
  home = mkdtempSync(join(tmpdir(), 'phigate-home-'));
  await new CredentialVault({ home, keychain: noKeychain }).saveLogin(dueCred, { insecureStorage: true });
  issuer = new Issuer();
  await issuer.start();
});
afterEach(async () => {
  for (const c of children.splice(0)) c.proc.kill('SIGKILL');
  await issuer.close();
  rmSync(home, { recursive: true, force: true });
});

describe('the credential refresh lock across processes', () => {
  it('a slow refresh keeps its lock past the stale time: the other process waits and adopts the new tokens', async () => {
    const a = child(home, issuer, 'a');
    children.push(a);
    await issuer.arrived(1); // a holds the lock and is talking to the issuer
    const b = child(home, issuer, 'b');
    children.push(b);
    await b.waitFor(/waiting/);
    // Hold a's refresh for several stale periods: a lock judged by age alone would be broken here,
    // and b would spend rt-1 a second time.
    await new Promise((r) => setTimeout(r, 3 * STALE_MS));
    issuer.answerAll();
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    issuer.answerAll(); // whatever b may have sent meanwhile
    expect(issuer.reused).toEqual([]);
    expect(issuer.requests).toEqual([{ who: 'a', refreshToken: 'rt-1' }]);
    expect(result(a)).toEqual({ token: 'at-2', renewals: 1 });
    expect(result(b)).toEqual({ token: 'at-2', renewals: 0 });
  });

  it('a holder killed mid-refresh leaves a stale lock that the other process takes over', async () => {
    const a = child(home, issuer, 'a');
    children.push(a);
    await issuer.arrived(1);
    a.proc.kill('SIGKILL'); // no exit handler runs: the lock directory stays behind
    await a.exited;
    issuer.dropAll();
    const b = child(home, issuer, 'b');
    children.push(b);
    await issuer.arrived(2);
    issuer.answerAll();
    expect(await b.exited).toBe(0);
    expect(issuer.requests.map((r) => r.who)).toEqual(['a', 'b']);
    expect(issuer.reused).toEqual([]);
    expect(result(b)).toEqual({ token: 'at-2', renewals: 1 });
  });
});
