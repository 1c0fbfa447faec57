// One error, three surfaces: a refusal reaches an HTTP client, the CLI and a PostgreSQL client (through
// `phigate connect`) as the error table (src/common/errors.ts) says: status and JSON code, exit code,
// SQLSTATE, with the same message.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_TABLE, type ErrorCode } from '../../src/common/errors.js';
import { run, startGateway, type Gw } from '../support/harness.js';
import { pgClient } from '../support/clients.js';

let gw: Gw;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => gw?.close());

const now = (): number => Math.floor(Date.now() / 1000);
const expiredToken = (): Promise<string> =>
  gw.idp.signWithIssuerKey({ sub: 'alice', groups: ['engineering'], iat: now() - 7200, exp: now() - 3600 });

async function http(path: string, token: string): Promise<{ status: number; body: { error: string; message: string } }> {
  const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as { error: string; message: string } };
}

async function cliExit(token: string, connection: string): Promise<{ code: number | null; stderr: string }> {
  const p = run(['connect', connection, '--server', gw.url], { PHIGATE_TOKEN: token });
  const { code } = await p.exited;
  return { code, stderr: p.stderr() };
}

/** The SQLSTATE and message a node-postgres client gets when its connection is refused. */
async function pgRefusal(port: number): Promise<{ code?: string; message: string }> {
  const c = pgClient(port);
  c.on('error', () => {});
  try {
    await c.connect();
    await c.end();
    return { message: 'connected' };
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { code: e.code, message: e.message };
  }
}

describe('a refusal is the same error on every surface', () => {
  const cases: [ErrorCode, () => Promise<string>, string, RegExp][] = [
    ['unauthenticated', expiredToken, 'ehr', /expired/],
    ['forbidden', () => gw.token('mallory'), 'ehr', /not a member of any group allowed on "ehr"/],
    ['unknown_connection', () => gw.token('alice'), 'nope', /no connection named "nope"/],
  ];

  it.each(cases)('%s: HTTP status and code, CLI exit code', async (code, token, connection, message) => {
    const t = await token();
    const h = await http(`/v1/connections/${connection}`, t);
    expect(h.status).toBe(ERROR_TABLE[code].http);
    expect(h.body.error).toBe(code);
    expect(h.body.message).toMatch(message);
    const c = await cliExit(t, connection);
    expect(c.code).toBe(ERROR_TABLE[code].exit);
    expect(c.stderr).toMatch(message);
  });

  it('unauthenticated and forbidden: the SQLSTATE psql and drivers see through `phigate connect`', async () => {
    // The token file is read per stream: alice connects, then the file holds what is refused.
    const file = join(gw.dir, 'surfaces-token');
    writeFileSync(file, await gw.token('alice'));
    const c = run(['connect', 'ehr', '--server', gw.url, '--token-file', file], { PHIGATE_TOKEN: '' });
    const port = Number((await c.waitFor(/port=(\d+)/))[1]);
    try {
      expect((await pgRefusal(port)).message).toBe('connected');
      writeFileSync(file, await expiredToken());
      const expired = await pgRefusal(port);
      expect(expired.code).toBe(ERROR_TABLE.unauthenticated.sqlstate);
      expect(expired.message).toMatch(/expired/);
      writeFileSync(file, await gw.token('mallory'));
      const outsider = await pgRefusal(port);
      expect(outsider.code).toBe(ERROR_TABLE.forbidden.sqlstate);
      expect(outsider.message).toMatch(/not a member of any group allowed on "ehr"/);
    } finally {
      await c.stop();
    }
  });

  it('token_misplaced: 400 with its code on HTTP, before any route', async () => {
    const res = await fetch(`${gw.url}/v1/connections?access_token=${await gw.token('alice')}`);
    expect(res.status).toBe(ERROR_TABLE.token_misplaced.http);
    expect(((await res.json()) as { error: string }).error).toBe('token_misplaced');
  });

  it('denied: a statement the policy refuses is 42501 to a PostgreSQL client, as the table says', async () => {
    const c = run(['connect', 'ehr', '--server', gw.url], { PHIGATE_TOKEN: await gw.token('alice') });
    const port = Number((await c.waitFor(/port=(\d+)/))[1]);
    const client = pgClient(port);
    try {
      await client.connect();
      const err = await client.query("select pg_read_file('/etc/hostname')").then(() => undefined, (e: { code?: string }) => e);
      expect(err?.code).toBe(ERROR_TABLE.denied.sqlstate);
      // The session goes on after a denial.
      expect((await client.query('select 1 as one')).rows[0]).toEqual({ one: 1 });
    } finally {
      await client.end().catch(() => {});
      await c.stop();
    }
  });
});
