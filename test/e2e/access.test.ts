// Who may open a tunnel: bad tokens are refused with exit code 3, outsiders with 4, and each refusal
// is logged by the server with its reason. Upstream failures reach clients as proper errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, generateKeyPair } from 'jose';
import { startTestIdp } from '../support/oidc.js';
import { run, startGateway, type Gw } from '../support/harness.js';
import { psql } from '../support/clients.js';
import { freePort } from '../support/postgres.js';

let gw: Gw;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => gw?.close());

async function connectExit(env: NodeJS.ProcessEnv, args: string[] = ['connect', 'ehr']): Promise<{ code: number | null; stderr: string }> {
  const p = run([...args, '--server', gw.url], env);
  const { code } = await p.exited;
  return { code, stderr: p.stderr() };
}

describe('tunnel authentication', () => {
  const now = (): number => Math.floor(Date.now() / 1000);

  const cases: [string, () => Promise<NodeJS.ProcessEnv>, RegExp][] = [
    ['no token at all', async () => ({ PHIGATE_TOKEN: '', PHIGATE_HOME: gw.dir }), /not logged in/],
    ['an expired token', async () => ({
      PHIGATE_TOKEN: await gw.idp.signWithIssuerKey({ sub: 'alice', groups: ['engineering'], iat: now() - 7200, exp: now() - 3600 }),
    }), /expired/],
    ['a token for another audience', async () => ({ PHIGATE_TOKEN: await gw.idp.mint('alice', { audience: 'not-phigate' }) }), /audience/],
    ['a token signed by an untrusted key', async () => {
      const { privateKey } = await generateKeyPair('ES256');
      const token = await new SignJWT({ groups: ['engineering'] })
        .setProtectedHeader({ alg: 'ES256', kid: gw.idp.kid })
        .setIssuer(gw.idp.issuer).setAudience('phigate').setSubject('alice').setIssuedAt().setExpirationTime('5m')
        .sign(privateKey);
      return { PHIGATE_TOKEN: token };
    }, /signature/],
    ['garbage', async () => ({ PHIGATE_TOKEN: 'not-a-jwt' }), /malformed|token/],
    ['an alg: none token', async () => {
      const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
      return { PHIGATE_TOKEN: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: gw.idp.issuer, aud: 'phigate', sub: 'alice', exp: now() + 300, groups: ['engineering'] })}.` };
    }, /algorithm|alg/i],
    ['an HS256 token signed with the issuer\'s public key', async () => {
      const secret = new TextEncoder().encode(JSON.stringify(gw.idp.publicJwk));
      const token = await new SignJWT({ groups: ['engineering'] }).setProtectedHeader({ alg: 'HS256', kid: gw.idp.kid })
        .setIssuer(gw.idp.issuer).setAudience('phigate').setSubject('alice').setIssuedAt().setExpirationTime('5m').sign(secret);
      return { PHIGATE_TOKEN: token };
    }, /algorithm|alg|HS256/i],
    ['a token not yet valid', async () => ({
      PHIGATE_TOKEN: await gw.idp.signWithIssuerKey({ sub: 'alice', groups: ['engineering'], nbf: now() + 3600, exp: now() + 7200 }),
    }), /not valid before|not yet valid|nbf/i],
    ['a token naming another issuer', async () => ({
      PHIGATE_TOKEN: await gw.idp.signWithIssuerKey({ sub: 'alice', groups: ['engineering'], iss: 'https://evil.example/' }),
    }), /issuer/i],
    ['a token with an unknown kid', async () => ({
      PHIGATE_TOKEN: await gw.idp.signWithIssuerKey({ sub: 'alice', groups: ['engineering'] }, { kid: 'no-such-key' }),
    }), /key|kid/i],
    ['a valid token from a provider not in the config', async () => {
      const other = await startTestIdp({ identities: { alice: ['engineering'] } });
      const token = await other.mint('alice');
      await other.close();
      return { PHIGATE_TOKEN: token };
    }, /issuer/i],
    ['a truncated token', async () => ({ PHIGATE_TOKEN: (await gw.token('alice')).slice(0, -12) }), /signature|malformed|token/i],
  ];

  for (const [name, env, reason] of cases) {
    it(`refuses ${name} with exit code 3 and a one-line reason`, async () => {
      const refusals = (): number => gw.server.stderr().split('\n').filter((l) => l.includes('access refused') && l.includes('code=unauthenticated')).length;
      const before = refusals();
      const r = await connectExit(await env());
      if (name !== 'no token at all') expect(refusals()).toBe(before + 1); // the server logged why
      expect(r.code).toBe(3);
      const lines = r.stderr.trim().split('\n');
      expect(lines[0]).toMatch(/^phigate: /);
      expect(lines[0]).toMatch(reason);
      expect(lines.length).toBeLessThanOrEqual(2); // the reason, then at most a hint
    });
  }

  it('logs every refusal on the server with its reason', async () => {
    const before = gw.server.stderr().split('\n').filter((l) => l.includes('access refused')).length;
    await connectExit({ PHIGATE_TOKEN: await gw.idp.mint('alice', { audience: 'elsewhere' }) });
    const lines = gw.server.stderr().split('\n').filter((l) => l.includes('access refused'));
    expect(lines.length).toBe(before + 1);
    expect(lines.at(-1)).toMatch(/code=unauthenticated/);
    expect(lines.at(-1)).toMatch(/audience/);
  });

  it('refuses an identity outside allow_groups with exit code 4', async () => {
    const r = await connectExit({ PHIGATE_TOKEN: await gw.token('mallory') });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/not a member of any group allowed on "ehr"/);
  });

  it('reads the token from --token-file', async () => {
    const file = join(gw.dir, 'token');
    writeFileSync(file, `${await gw.token('alice')}\n`);
    const c = run(['connect', 'ehr', '--server', gw.url, '--token-file', file], { PHIGATE_TOKEN: '' });
    const m = await c.waitFor(/port=(\d+)/);
    const r = await psql(Number(m[1]), ['-tA', '-c', 'select 41 + 1']);
    await c.stop();
    expect(r.stdout.trim()).toBe('42');
  });

  it('names an unknown connection (exit 1) and an unreachable gateway (exit 5)', async () => {
    const token = await gw.token('alice');
    const unknown = await connectExit({ PHIGATE_TOKEN: token }, ['connect', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no connection named "nope"/);
    const p = run(['connect', 'ehr', '--server', `http://127.0.0.1:${await freePort()}`], { PHIGATE_TOKEN: token });
    expect((await p.exited).code).toBe(5);
    expect(p.stderr()).toMatch(/gateway unreachable/);
  });

  it('refuses a new stream once the token file holds an expired token, telling psql why', async () => {
    const file = join(gw.dir, 'rotating-token');
    writeFileSync(file, await gw.token('alice'));
    const c = run(['connect', 'ehr', '--server', gw.url, '--token-file', file], { PHIGATE_TOKEN: '' });
    const m = await c.waitFor(/port=(\d+)/);
    const port = Number(m[1]);
    expect((await psql(port, ['-tA', '-c', 'select 1'])).stdout.trim()).toBe('1');
    writeFileSync(file, await gw.idp.signWithIssuerKey({ sub: 'alice', groups: ['engineering'], iat: now() - 7200, exp: now() - 3600 }));
    const r = await psql(port, ['-tA', '-c', 'select 1']);
    await c.stop();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/expired/);
    expect(c.stderr()).toMatch(/gateway refused: .*expired/);
  });
});

describe('upstream failures', () => {
  it('reach the client as a FATAL error naming the connection, not a silent close', async () => {
    const c = await gw.connect('broken', await gw.token('alice'));
    const r = await psql(c.port, ['-c', 'select 1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FATAL: +phigate could not connect to the database of "broken"/);
    await c.stop();
  });

  it('md5 and trust upstreams work (tls disable and require)', async () => {
    for (const name of ['ehr-md5', 'ehr-trust']) {
      const c = await gw.connect(name, await gw.token('alice'));
      const r = await psql(c.port, ['-tA', '-c', 'select current_user']);
      expect(r.stdout.trim()).toBe(name === 'ehr-md5' ? gw.pg.roles.md5.user : gw.pg.roles.trust.user);
      await c.stop();
    }
  });
});
