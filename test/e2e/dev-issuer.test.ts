// `phigate server --dev`: the built-in OpenID Provider issues tokens the gateway itself trusts,
// through the device flow (browser step driven over HTTP), refresh tokens and client credentials.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type Proc } from '../support/harness.js';
import { driveDeviceVerification, parseForms, pageText, type Form, type Page } from '../support/device-browser.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expectTools } from '../support/expect-tools.js';

let dir: string;
let server: Proc;
let url: string;

const form = (o: Record<string, string>): RequestInit => ({
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o),
});
const claimsOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'phigate-dev-'));
  writeFileSync(join(dir, 'p.yaml'), 'version: 1\nconnections:\n  ehr:\n    upstream: postgres://u@127.0.0.1:1/ehr\n    tls: disable\n    allow_groups: [engineering, ai-agents]\n');
  server = run(['server', '--dev', '--config', join(dir, 'p.yaml'), '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')]);
  url = (await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function deviceLogin(identity: string, browse: (auth: Record<string, string>) => Promise<void> =
  (auth) => driveDeviceVerification(auth['verification_uri_complete']!, identity)): Promise<Record<string, string>> {
  const info = (await (await fetch(`${url}/.well-known/phigate`)).json()) as { issuer: string; client_id: string; scopes: string[] };
  const auth = (await (await fetch(`${info.issuer}/device/auth`, form({ client_id: info.client_id, scope: info.scopes.join(' ') }))).json()) as Record<string, string>;
  await browse(auth);
  return (await (await fetch(`${info.issuer}/token`, form({
    client_id: info.client_id, grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: auth['device_code']!,
  }))).json()) as Record<string, string>;
}

/** curl as someone in a shell would use it: -L, a cookie jar, the forms read from the HTML. */
async function curlPage(jar: string, target: string, fields?: URLSearchParams): Promise<Page> {
  const body = join(dir, 'curl-body.html');
  const args = ['-sS', '-L', '-c', jar, '-b', jar, '-o', body, '-w', '%{http_code} %{url_effective}', target];
  for (const [k, v] of fields ?? []) args.push('--data-urlencode', `${k}=${v}`);
  const { stdout } = await promisify(execFile)('curl', args);
  const [status, effective] = stdout.split(' ');
  return { status: Number(status), url: effective!, html: readFileSync(body, 'utf8') };
}

function pressWithCurl(jar: string, page: Page, label: RegExp, typed: Record<string, string> = {}): Promise<Page> {
  const f: Form | undefined = parseForms(page.html, page.url).find((x) => x.controls.some((c) => c.type === 'submit' && label.test(c.label)));
  if (!f) throw new Error(`no button ${label} inside a form: ${pageText(page.html).slice(0, 300)}`);
  const fields = new URLSearchParams();
  for (const c of f.controls) if (c.tag === 'input' && c.name) fields.append(c.name, typed[c.name] ?? c.value);
  const button = f.controls.find((c) => c.type === 'submit' && label.test(c.label))!;
  if (button.name) fields.append(button.name, button.value);
  return curlPage(jar, f.action, fields);
}

describe('phigate server --dev', () => {
  const hasCurl = expectTools('curl');
  it('advertises its issuer and CLI client at /.well-known/phigate', async () => {
    const res = await fetch(`${url}/.well-known/phigate`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      issuer: `${url}/oidc`, client_id: 'phigate-cli', audience: 'phigate',
      scopes: expect.arrayContaining(['openid', 'offline_access']), server_version: expect.any(String),
    });
  });

  it('device flow: picking bob yields a token the gateway accepts as bob, with a refresh token', async () => {
    const tok = await deviceLogin('bob');
    expect(tok['error']).toBeUndefined();
    expect(claimsOf(tok['access_token']!)).toMatchObject({ sub: 'bob', aud: 'phigate', groups: ['privacy-officers'], iss: `${url}/oidc` });
    const list = await fetch(`${url}/v1/connections`, { headers: { authorization: `Bearer ${tok['access_token']}` } });
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual({ connections: [] }); // bob is no engineer
    const refreshed = (await (await fetch(`${url}/oidc/token`, form({
      client_id: 'phigate-cli', grant_type: 'refresh_token', refresh_token: tok['refresh_token']!,
    }))).json()) as Record<string, string>;
    expect(claimsOf(refreshed['access_token']!)).toMatchObject({ sub: 'bob', groups: ['privacy-officers'] });
  });

  it('device flow: alice may use ehr as a human', async () => {
    const tok = await deviceLogin('alice');
    const pre = await fetch(`${url}/v1/connections/ehr`, { headers: { authorization: `Bearer ${tok['access_token']}` } });
    expect(await pre.json()).toMatchObject({ identity: { name: 'alice', kind: 'human', groups: ['engineering'] } });
  });

  it('device flow in a text browser: typing the code read off the terminal, every button inside its form', async () => {
    const tok = await deviceLogin('carol', (auth) => driveDeviceVerification(auth['verification_uri']!, 'carol', auth['user_code']!));
    expect(tok['error']).toBeUndefined();
    expect(claimsOf(tok['access_token']!)).toMatchObject({ sub: 'carol', groups: ['auditors'] });
  });

  it.skipIf(!hasCurl)('device flow with curl: plain form posts, following redirects with a cookie jar', async () => {
    const jar = join(dir, 'curl-cookies.txt');
    const tok = await deviceLogin('agent', async (auth) => {
      let page = await curlPage(jar, auth['verification_uri']!);
      page = await pressWithCurl(jar, page, /^Continue$/, { user_code: auth['user_code']! });
      expect(pageText(page.html)).toContain(auth['user_code']!);
      page = await pressWithCurl(jar, page, /^Yes, continue$/);
      page = await pressWithCurl(jar, page, /^Agent/);
      expect(pageText(page.html)).toMatch(/You are signed in/);
    });
    expect(claimsOf(tok['access_token']!)).toMatchObject({ sub: 'agent', groups: ['ai-agents'] });
  });

  it('device flow: aborting at the confirmation page denies the login', async () => {
    const tok = await deviceLogin('abort');
    expect(tok['error']).toBe('access_denied');
  });

  it('client credentials: dev-agent / dev-agent-secret is a service identity in ai-agents', async () => {
    const res = await fetch(`${url}/oidc/token`, {
      ...form({ grant_type: 'client_credentials' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('dev-agent:dev-agent-secret').toString('base64')}` },
    });
    const tok = (await res.json()) as Record<string, string>;
    const pre = await fetch(`${url}/v1/connections/ehr`, { headers: { authorization: `Bearer ${tok['access_token']}` } });
    expect(await pre.json()).toMatchObject({ identity: { subject: 'dev-agent', kind: 'service', groups: ['ai-agents'] } });
    const bad = await fetch(`${url}/oidc/token`, {
      ...form({ grant_type: 'client_credentials' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('dev-agent:wrong').toString('base64')}` },
    });
    expect(bad.status).toBe(401);
  });

  it('refuses to listen on a non-loopback address', async () => {
    const p = run(['server', '--dev', '--config', join(dir, 'p.yaml'), '--listen', '0.0.0.0:0', '--data-dir', join(dir, 'd2')]);
    expect((await p.exited).code).toBe(2);
    expect(p.stderr()).toMatch(/--dev refuses to listen on 0\.0\.0\.0/);
  });

  it('without --dev and without cli_client_id, says login is unavailable', async () => {
    const p = run(['server', '--config', join(dir, 'p.yaml'), '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'd3')]);
    const plain = (await p.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    const res = await fetch(`${plain}/.well-known/phigate`);
    await p.stop();
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'login_unavailable' });
  });
});
