// Issue 16, attacked as an attacker would against a running `phigate server --dev`: tokens in query
// strings, one person approving through a second identity, scopes wider than they say, labels posing
// as identities, privileged attempts missing from the audit chain. Each `it` is one finding's attack.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import pg from 'pg';
import { run, type Proc } from '../support/harness.js';
import { driveDeviceVerification } from '../support/device-browser.js';
import { expectTools } from '../support/expect-tools.js';

// Some tests run psql through `phigate exec`: without it they fail, and this names the package.
expectTools('psql');

let dir: string;
let server: Proc;
let url: string;
let admin: pg.Client;
const procs: Proc[] = [];
/** Every token this run used: none may appear in any log or file the server writes. */
const usedTokens = new Set<string>();

const form = (o: Record<string, string>): RequestInit => ({
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o),
});

const POLICY = (pgi: ReturnType<typeof inject<'pg'>>): string => `version: 1
connections:
  ehr:
    upstream: postgres://${pgi.roles.scram.user}@127.0.0.1:${pgi.port}/${pgi.database}
    password_env: EHR_DB_PASSWORD
    tls: disable
    allow_groups: [engineering, ai-agents, privacy-officers]
rules:
  - name: no-probing
    when: { predicates_on_masked: true }
    action: block
    message: filtering on a masked column is not allowed
  - name: phi-writes
    when: { statement: [delete], tables: [ctl_t] }
    action: approve
    approvers: [privacy-officers]
    timeout: 1m
default: allow
masking:
  columns:
    - { column: ctl_p.ssn, strategy: redact }
`;

beforeAll(async () => {
  const pgi = inject('pg');
  dir = mkdtempSync(join(tmpdir(), 'phigate-ctl-'));
  writeFileSync(join(dir, 'p.yaml'), POLICY(pgi));
  admin = new pg.Client({ host: pgi.host, port: pgi.port, user: pgi.superuser.user, password: pgi.superuser.password, database: pgi.database });
  await admin.connect();
  await admin.query(`DROP TABLE IF EXISTS ctl_t; CREATE TABLE ctl_t (id int); GRANT ALL ON ctl_t TO PUBLIC; INSERT INTO ctl_t SELECT generate_series(1, 10);
    DROP TABLE IF EXISTS ctl_p; CREATE TABLE ctl_p (id int, ssn text); GRANT ALL ON ctl_p TO PUBLIC; INSERT INTO ctl_p VALUES (1, '123-45-6789')`);
  server = run(
    ['server', '--dev', '--config', join(dir, 'p.yaml'), '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--log-file', join(dir, 'server.log')],
    { EHR_DB_PASSWORD: pgi.roles.scram.password },
  );
  url = (await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await server?.stop();
  await admin?.end();
  rmSync(dir, { recursive: true, force: true });
});

/** A client-credentials token of the dev issuer's `dev-<name>` client (a service identity). */
async function serviceToken(name: string): Promise<string> {
  const res = await fetch(`${url}/oidc/token`, {
    ...form({ grant_type: 'client_credentials' }),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`dev-${name}:dev-${name}-secret`).toString('base64')}` },
  });
  const t = ((await res.json()) as Record<string, string>)['access_token']!;
  usedTokens.add(t);
  return t;
}

/** A device-flow token of the dev identity `name` (a human). */
async function humanToken(name: string): Promise<string> {
  const info = (await (await fetch(`${url}/.well-known/phigate`)).json()) as { issuer: string; client_id: string; scopes: string[] };
  const auth = (await (await fetch(`${info.issuer}/device/auth`, form({ client_id: info.client_id, scope: info.scopes.join(' ') }))).json()) as Record<string, string>;
  await driveDeviceVerification(auth['verification_uri_complete']!, name);
  const tok = (await (await fetch(`${info.issuer}/token`, form({
    client_id: info.client_id, grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: auth['device_code']!,
  }))).json()) as Record<string, string>;
  for (const k of ['access_token', 'refresh_token', 'id_token']) if (tok[k]) usedTokens.add(tok[k]);
  return tok['access_token']!;
}

/** `phigate connect ehr` as the holder of `token`; its local port. */
async function connectAs(token: string, extra: string[] = []): Promise<number> {
  const c = run(['connect', 'ehr', '--server', url, ...extra], { PHIGATE_TOKEN: token });
  procs.push(c);
  return Number((await c.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);
}

interface View { id: string; status: string; statement: string; shape: string; can_decide: boolean; own: boolean; requester: { name: string; label?: string }; decision: { scope?: string } | null }

async function api(token: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** The next pending request `viewer` sees that `seen` does not hold yet. */
async function nextPending(viewer: string, seen: Set<string>): Promise<View> {
  for (let i = 0; i < 200; i++) {
    const list = (await api(viewer, '/v1/approvals')).json['approvals'] as View[];
    const found = list.find((a) => a.status === 'pending' && !seen.has(a.id));
    if (found) {
      seen.add(found.id);
      return found;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no pending approval');
}
const seen = new Set<string>();

/** Runs `sql` through `port` with node-postgres in the background: the promise settles when it does. */
function runHeld(port: number, sql: string): { done: Promise<unknown>; client: pg.Client } {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'x', database: 'ehr' });
  const done = client.connect().then(() => client.query(sql)).then((r) => r, (e: unknown) => e);
  return { done, client };
}

/** Every file under `root` (recursively) with its mode. */
function filesUnder(root: string): { path: string; mode: number; dir: boolean }[] {
  const out: { path: string; mode: number; dir: boolean }[] = [];
  const walk = (p: string): void => {
    const st = statSync(p);
    out.push({ path: p, mode: st.mode & 0o777, dir: st.isDirectory() });
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(root);
  return out;
}

/** Every log and file the server wrote: no token (nor a token's signature), files 0600, directories 0700. */
function assertNothingLeaks(): void {
  const files = filesUnder(join(dir, 'data')).concat(filesUnder(join(dir, 'server.log')));
  expect(files.length).toBeGreaterThan(5);
  for (const f of files) expect({ path: f.path, mode: f.mode.toString(8) }).toEqual({ path: f.path, mode: f.dir ? '700' : '600' });
  const texts = [server.stdout(), server.stderr(), ...files.filter((f) => !f.dir).map((f) => readFileSync(f.path, 'latin1'))];
  expect(usedTokens.size).toBeGreaterThan(2);
  for (const t of usedTokens) {
    // The whole token, and its signature alone (what a partial copy would need to replay it).
    const sig = t.split('.')[2]!;
    for (const text of texts) {
      expect(text.includes(t)).toBe(false);
      expect(text.includes(sig)).toBe(false);
    }
  }
}

describe('finding 1: bearer tokens never leave the Authorization header, and never reach a log or file', () => {
  it('a token in a query string is refused with where it belongs, and the log shows the path only', async () => {
    const bob = await humanToken('bob');
    for (const path of ['/v1/approvals/apr-abcdef/approve', '/v1/connections', '/v1/audit/search', '/admin/policy']) {
      const res = await fetch(`${url}${path}?access_token=${bob}`, { method: path.endsWith('approve') || path === '/admin/policy' ? 'POST' : 'GET' });
      expect(res.status, path).toBe(400);
      const body = (await res.json()) as { error: string; message: string };
      expect(body.error).toBe('token_misplaced');
      expect(body.message).toMatch(/Authorization: Bearer/);
    }
    // The same through a tunnel upgrade, under another parameter name.
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/tunnel/ehr?token=${bob}`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('upgrade with a token in the URL was accepted')));
      ws.on('error', () => {});
    });
    expect(status).toBe(400);
    const log = server.stderr() + readFileSync(join(dir, 'server.log'), 'utf8');
    expect(log).toContain('path=/v1/approvals/apr-abcdef/approve');
    expect(log).not.toContain('access_token=');
    expect(log).not.toContain(bob);
  });

  it('a run that connects and queries writes no token to any log or data file; files are 0600, directories 0700', async () => {
    const alice = await serviceToken('alice');
    const c = run(['connect', 'ehr', '--server', url], { PHIGATE_TOKEN: alice });
    procs.push(c);
    const port = Number((await c.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'ehr' });
    await client.connect();
    expect((await client.query('SELECT count(*)::int AS n FROM ctl_t')).rows[0].n).toBe(10);
    await client.end();
    await serviceToken('carol').then((t) => fetch(`${url}/v1/audit/search`, { headers: { authorization: `Bearer ${t}` } }));
    assertNothingLeaks();
  });
});

describe('finding 2: separation of duties compares persons', () => {
  it('bob (device flow) cannot have his held statement approved by dev-bob (his client-credentials identity)', async () => {
    const bob = await humanToken('bob');
    const devBob = await serviceToken('bob');
    const port = await connectAs(bob);
    const held = runHeld(port, 'DELETE FROM ctl_t WHERE id = 1');
    const p = await nextPending(devBob, seen);
    expect(p.can_decide).toBe(false);
    expect(p.own).toBe(true);
    const r = await api(devBob, `/v1/approvals/${p.id}/approve`, { reason: 'looks fine to me' });
    expect(r.status).toBe(403);
    expect(r.json['error']).toBe('self_approval');
    // The requester gives up; nothing ran.
    await held.client.end().catch(() => {});
    await held.done;
    expect((await admin.query('SELECT count(*)::int AS n FROM ctl_t WHERE id = 1')).rows[0].n).toBe(1);
  });
});

describe('finding 3: an approval releases exactly what its scope says', () => {
  it('statement releases the same text only; shape releases any literals; session everything the rule holds', async () => {
    const bob = await humanToken('bob');
    const port = await connectAs(await serviceToken('alice'));
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'ehr' });
    await client.connect();
    /** Runs `sql`; approves its request with `scope` if it is held; says whether it was held. */
    const exec = async (sql: string, scope?: string): Promise<boolean> => {
      let settled = false;
      const q = client.query(sql).finally(() => (settled = true));
      // Held or not is whichever shows first: the statement's answer, or a request waiting for bob.
      let p: View | undefined;
      while (!p) {
        if (settled) return (await q, false);
        const list = (await api(bob, '/v1/approvals')).json['approvals'] as View[];
        p = list.find((a) => a.status === 'pending' && !seen.has(a.id));
        if (!p) await new Promise((r) => setTimeout(r, 50));
      }
      seen.add(p.id);
      expect(p.statement).toBe(sql.replace(/-?\d+$/, (m) => (m.startsWith('-') ? '-<n>' : '<n>')));
      expect(p.shape).toMatch(/<any number>$/);
      const r = await api(bob, `/v1/approvals/${p.id}/approve`, { scope: scope ?? 'once', reason: 'issue 16 scopes' });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      await q;
      return true;
    };
    expect(await exec('DELETE FROM ctl_t WHERE id = -55555', 'statement')).toBe(true);
    expect(await exec('DELETE FROM ctl_t WHERE id = -55555')).toBe(false); // the same text: released
    expect(await exec('DELETE FROM ctl_t WHERE id = -88888', 'shape')).toBe(true); // another literal: asked again
    expect(await exec('DELETE FROM ctl_t WHERE id = -77777')).toBe(false); // any literal of that shape: released
    expect(await exec('DELETE FROM ctl_t WHERE id > 1000', 'session')).toBe(true); // another shape: asked again
    expect(await exec('DELETE FROM ctl_t WHERE id < -1000')).toBe(false); // everything rule phi-writes holds: released
    await client.end();
    // Another session of the same person starts from nothing.
    const other = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'ehr' });
    await other.connect();
    const q = other.query('DELETE FROM ctl_t WHERE id = -55555');
    const p = await nextPending(bob, seen);
    expect((await api(bob, `/v1/approvals/${p.id}/deny`, { reason: 'not again' })).status).toBe(200);
    await expect(q).rejects.toThrow(/denied by bob/);
    await other.end();
  });
});

describe('finding 4: a session label is a label, not an identity', () => {
  it('alice labelling her agent " DEV-BOB " does not stop dev-bob (bob\'s own service identity) approving; labels are normalised', async () => {
    const bob = await serviceToken('bob');
    const alice = await serviceToken('alice');
    const name = ` DEV-BOB ${'x'.repeat(100)}`;
    const ex = run(['exec', '--connection', 'ehr', '--name', name, '--server', url, '--', 'psql', '-X', '-c', 'DELETE FROM ctl_t WHERE id = 2'], { PHIGATE_TOKEN: alice });
    procs.push(ex);
    const p = await nextPending(bob, seen);
    expect(p.requester.label).toBe(`DEV-BOB ${'x'.repeat(56)}`);
    expect(p.can_decide).toBe(true);
    expect(p.own).toBe(false);
    const listed = run(['approvals', '--server', url], { PHIGATE_TOKEN: bob, COLUMNS: '400' });
    await listed.exited;
    expect(listed.stdout()).toContain(`dev-alice (agent "DEV-BOB ${'x'.repeat(56)}")`);
    const r = await api(bob, `/v1/approvals/${p.id}/approve`, { reason: 'duplicate row, ticket 16' });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect((await ex.exited).code).toBe(0);
    expect((await admin.query('SELECT count(*)::int AS n FROM ctl_t WHERE id = 2')).rows[0].n).toBe(0);
  });
});

/** The audit log as written so far. */
function auditRecords(): Record<string, unknown>[] {
  return readFileSync(join(dir, 'data', 'audit', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('finding 5: every privileged attempt, granted or refused, is on the tamper-evident record', () => {
  it('a non-admin policy change, a non-auditor search and export, an auditor listing sessions, decisions: all audit records', async () => {
    const alice = await serviceToken('alice');
    const carol = await serviceToken('carol');
    const get = (token: string, path: string, init: RequestInit = {}): Promise<Response> =>
      fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
    expect((await get(alice, '/admin/policy', { method: 'POST', body: 'version: 1\n' })).status).toBe(403);
    expect((await get(alice, '/v1/audit/search')).status).toBe(403);
    expect((await get(alice, '/v1/audit/export')).status).toBe(403);
    expect((await get(alice, '/v1/audit/verify')).status).toBe(403);
    expect((await get(alice, '/v1/sessions?user=bob')).status).toBe(403);
    expect((await get(alice, '/v1/sessions/0000aaaa/recording')).status).toBe(403);
    expect((await get(alice, '/v1/policy/history')).status).toBe(403);
    expect((await get(carol, '/v1/sessions')).status).toBe(200);
    const mine = (action: string, outcome: string, user: string): Record<string, unknown> | undefined =>
      auditRecords().find((r) => r['type'] === 'privileged' && r['action'] === action && r['outcome'] === outcome && r['user'] === user);
    for (const action of ['policy.apply', 'audit.search', 'audit.export', 'audit.verify', 'sessions.list', 'replay', 'policy.history']) {
      expect(mine(action, 'refused', 'dev-alice'), action).toMatchObject({ subject: 'dev-alice', issuer: `${url}/oidc`, code: 'forbidden', target: expect.any(String) });
    }
    expect(mine('sessions.list', 'granted', 'dev-carol')).toMatchObject({ target: 'sessions of everyone' });
    // Decisions from the findings above: dev-bob's refused self-approval, bob's granted approvals.
    expect(auditRecords().find((r) => r['type'] === 'privileged' && r['action'] === 'approval.decide' && r['user'] === 'dev-bob' && r['outcome'] === 'refused'))
      .toMatchObject({ code: 'self_approval', target: expect.stringMatching(/^apr-[a-z0-9]{6} \(approve\)$/) });
    expect(mine('approval.decide', 'granted', 'bob')).toBeDefined();

    // The auditor's tools read the new kind: search by type and outcome, verify the chain, export it.
    const search = run(['audit', 'search', '--type', 'privileged', '--decision', 'refused', '--user', 'dev-alice', '--json', '--server', url], { PHIGATE_TOKEN: carol });
    expect((await search.exited).code).toBe(0);
    const found = (JSON.parse(search.stdout()) as { records: Record<string, unknown>[] }).records;
    expect(new Set(found.map((r) => r['action']))).toEqual(new Set(['policy.apply', 'audit.search', 'audit.export', 'audit.verify', 'sessions.list', 'replay', 'policy.history']));
    const table = run(['audit', 'search', '--type', 'privileged', '--user', 'dev-alice', '--server', url], { PHIGATE_TOKEN: carol, COLUMNS: '200' });
    await table.exited;
    expect(table.stdout()).toMatch(/dev-alice +privileged +refused +policy\.apply policy: refused \(forbidden\)/);
    expect(table.stdout()).toMatch(/sessions\.list sessions of bob: refused \(forbidden\)/);
    const verify = run(['audit', 'verify', '--json', '--server', url], { PHIGATE_TOKEN: carol });
    expect((await verify.exited).code).toBe(0);
    expect(JSON.parse(verify.stdout())).toMatchObject({ ok: true });
    const out = join(dir, 'export.ndjson');
    const exp = run(['audit', 'export', '--out', out, '--server', url], { PHIGATE_TOKEN: carol });
    expect((await exp.exited).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('"type":"privileged"');
    rmSync(out);
  });
});

describe('finding 6: an approval or denial needs a reason', () => {
  it('an empty or blank reason is refused (400 reason_required); the statement keeps waiting until one is given', async () => {
    const bob = await humanToken('bob');
    const port = await connectAs(await serviceToken('alice'));
    const held = runHeld(port, 'DELETE FROM ctl_t WHERE id = 3');
    const p = await nextPending(bob, seen);
    for (const body of [{}, { reason: '' }, { reason: '   ' }]) {
      const r = await api(bob, `/v1/approvals/${p.id}/approve`, body);
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ error: 'reason_required', message: expect.stringMatching(/--reason/) });
    }
    expect((await api(bob, `/v1/approvals/${p.id}/deny`, { reason: '' })).status).toBe(400);
    const cli = run(['approve', p.id, '--server', url], { PHIGATE_TOKEN: bob });
    expect((await cli.exited).code).toBe(2);
    expect(cli.stderr()).toMatch(/a reason is required[\s\S]*hint: say why/);
    const ok = run(['approve', p.id, '--reason', 'duplicate, ticket 3', '--server', url], { PHIGATE_TOKEN: bob });
    expect((await ok.exited).code).toBe(0);
    expect(await held.done).toMatchObject({ command: 'DELETE', rowCount: 1 });
    await held.client.end();
  });
});

describe('finding 6: phigate policy test decides as the live gateway does', () => {
  it('predicates_on_masked: policy test shows the block the gateway gives, not ALLOW', async () => {
    const sql = "SELECT id FROM ctl_p WHERE ssn = '123-45-6789'";
    const port = await connectAs(await serviceToken('alice'));
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'ehr' });
    await client.connect();
    await expect(client.query(sql)).rejects.toThrow(/filtering on a masked column is not allowed/);
    await client.end();
    const t = run(['policy', 'test', '--file', join(dir, 'p.yaml'), '--sql', sql, '--as', 'dev-alice', '--groups', 'engineering', '--kind', 'service', '--json']);
    expect((await t.exited).code).toBe(0);
    expect(JSON.parse(t.stdout())).toMatchObject({ decision: 'block', rule: 'no-probing', reason: expect.stringMatching(/masked column/) });
    // A masked reader may not copy masked rows inside the database either; policy test says so too.
    const copy = run(['policy', 'test', '--file', join(dir, 'p.yaml'), '--sql', 'CREATE TABLE stolen AS SELECT * FROM ctl_p', '--groups', 'engineering', '--json']);
    await copy.exited;
    expect(JSON.parse(copy.stdout())).toMatchObject({ decision: 'block', reason: expect.stringMatching(/copying rows of ctl_p into stolen is not allowed/) });
  });
});

describe('finding 1, at the end of the run', () => {
  it('after every attack above, no log or data file holds any token used, and modes are still 0600/0700', () => {
    expect(usedTokens.size).toBeGreaterThan(5);
    assertNothingLeaks();
  });
});
