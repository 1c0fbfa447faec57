// Bearer-token verification against real OpenID Providers: identities, the attack matrix, issuers, the cache.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { base64url, exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT, type CryptoKey } from 'jose';
import { AuthError, bearerToken, TokenVerifier, type AuthErrorCode } from '../../src/auth/index.js';
import { startTestIdp, type TestIdp } from '../support/oidc.js';

const nowSec = (): number => Math.floor(Date.now() / 1000);

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<AuthError> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AuthError);
  return err as AuthError;
}

/** Refused with `code`, in one line, and the message gives away no part of the token. */
async function expectRefused(v: TokenVerifier, token: string, code: AuthErrorCode): Promise<AuthError> {
  const err = await refusal(v.verify(token));
  expect({ code: err.code, message: err.message }).toMatchObject({ code });
  expect(err.message).not.toContain('\n');
  if (token.length > 0) expect(err.message).not.toContain(token);
  for (const part of token.split('.')) if (part.length >= 12) expect(err.message).not.toContain(part);
  return err;
}

function unsignedToken(header: Record<string, unknown>, claims: Record<string, unknown>, signature = ''): string {
  const enc = (o: unknown): string => base64url.encode(JSON.stringify(o));
  return `${enc(header)}.${enc(claims)}.${signature}`;
}

describe('TokenVerifier against a real OpenID Provider', () => {
  let idp: TestIdp;
  let outsider: TestIdp;
  let verifier: TokenVerifier;

  beforeAll(async () => {
    [idp, outsider] = await Promise.all([
      startTestIdp({ identities: { alice: ['engineering', 'ai-agents'], ci: [] } }),
      startTestIdp({ identities: { mallory: ['privacy-officers'] } }),
    ]);
    verifier = new TokenVerifier([{ issuer: idp.issuer, audience: 'phigate' }], { allowHttp: true });
  });
  afterAll(async () => {
    await Promise.all([idp.close(), outsider.close()]);
  });

  const claimsFor = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    iss: idp.issuer, aud: 'phigate', sub: 'u-1', iat: nowSec(), exp: nowSec() + 300, ...extra,
  });

  it('verifies a minted client-credentials token to a service identity with its groups', async () => {
    const token = await idp.mint('alice');
    expect(bearerToken(`Bearer ${token}`)).toBe(token);
    const id = await verifier.verify(token);
    expect(id).toMatchObject({
      subject: 'alice', issuer: idp.issuer, name: 'alice', groups: ['engineering', 'ai-agents'], kind: 'service', clientId: 'alice',
    });
    expect(id.expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(id.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 601_000);
    expect((await verifier.verify(await idp.mint('ci'))).groups).toEqual([]);
  });

  it('verifies a token with preferred_username as a human named by it', async () => {
    const token = await idp.signWithIssuerKey({
      sub: '7f3c-user', preferred_username: 'dana', email: 'dana@example.com', client_id: 'phigate-cli', groups: 'engineering, oncall engineering',
    });
    const id = await verifier.verify(token);
    expect(id).toMatchObject({ subject: '7f3c-user', name: 'dana', kind: 'human', clientId: 'phigate-cli', groups: ['engineering', 'oncall'] });
    const byEmail = await verifier.verify(await idp.signWithIssuerKey({ sub: 'u-9', email: 'eve@example.com' }));
    expect(byEmail).toMatchObject({ name: 'eve@example.com', kind: 'human', groups: [] });
  });

  describe('refuses', () => {
    it('claims that name the identity with a lone surrogate (no audit record could be written for it)', async () => {
      for (const claims of [{ preferred_username: 'dana\uD800' }, { groups: ['engineering', '\uDC00x'] }, { sub: 'u-\uDBFF' }]) {
        await expectRefused(verifier, await idp.signWithIssuerKey(claims), 'invalid_claim');
      }
      // A surrogate pair (one astral character) is fine.
      expect((await verifier.verify(await idp.signWithIssuerKey({ preferred_username: 'dana\u{1FA7A}' }))).name).toBe('dana\u{1FA7A}');
    });

    it('alg none', async () => {
      await expectRefused(verifier, unsignedToken({ alg: 'none', typ: 'JWT' }, claimsFor()), 'unsupported_alg');
      await expectRefused(verifier, unsignedToken({ alg: 'None' }, claimsFor(), 'c2ln'), 'unsupported_alg');
    });

    it('HS256 signed with the issuer public key bytes as the secret', async () => {
      const pem = await exportSPKI((await importJWK(idp.publicJwk, 'ES256')) as CryptoKey);
      for (const secret of [pem, JSON.stringify(idp.publicJwk)]) {
        const token = await new SignJWT(claimsFor())
          .setProtectedHeader({ alg: 'HS256', kid: idp.kid, typ: 'JWT' })
          .sign(new TextEncoder().encode(secret));
        const err = await expectRefused(verifier, token, 'unsupported_alg');
        expect(err.message).toContain('HS256');
      }
    });

    it('alg none and HS* before any key lookup', async () => {
      const cold = new TokenVerifier([{ issuer: idp.issuer, audience: 'phigate' }], { allowHttp: true });
      const fetchSpy = vi.spyOn(globalThis, 'fetch');
      try {
        const hs = await new SignJWT(claimsFor()).setProtectedHeader({ alg: 'HS512' }).sign(new Uint8Array(64));
        await expectRefused(cold, hs, 'unsupported_alg');
        await expectRefused(cold, unsignedToken({ alg: 'none' }, claimsFor()), 'unsupported_alg');
        expect(fetchSpy).not.toHaveBeenCalled();
      } finally {
        fetchSpy.mockRestore();
      }
    });

    it('an expired token, naming when it expired', async () => {
      const exp = nowSec() - 3600;
      const err = await expectRefused(verifier, await idp.signWithIssuerKey({ iat: exp - 600, exp }), 'expired');
      expect(err.message).toContain(new Date(exp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
      expect(err.message).toContain('phigate login');
      // Inside the default 30 s clock tolerance it is still accepted.
      await expect(verifier.verify(await idp.signWithIssuerKey({ exp: nowSec() - 5 }))).resolves.toMatchObject({ subject: 'test-subject' });
    });

    it('a token that is not yet valid', async () => {
      await expectRefused(verifier, await idp.signWithIssuerKey({ nbf: nowSec() + 3600 }), 'not_yet_valid');
    });

    it('a wrong issuer claim on a token signed by the trusted key', async () => {
      const forged = await idp.signWithIssuerKey({ iss: 'https://idp.evil.example/' });
      await verifier.verify(await idp.mint('alice')); // the trusted keys are in memory
      const err = await expectRefused(verifier, forged, 'wrong_issuer');
      expect(err.message).toContain(idp.issuer);
      // A verifier that has not fetched any key yet makes no request for it: plain unknown issuer.
      const cold = new TokenVerifier([{ issuer: idp.issuer, audience: 'phigate' }], { allowHttp: true });
      await expectRefused(cold, forged, 'unknown_issuer');
    });

    it('a real token for another audience', async () => {
      const err = await expectRefused(verifier, await idp.mint('alice', { audience: 'billing-api' }), 'wrong_audience');
      expect(err.message).toContain('billing-api');
    });

    it('an unknown kid', async () => {
      const err = await expectRefused(verifier, await idp.signWithIssuerKey({}, { kid: 'no-such-key' }), 'unknown_key');
      expect(err.message).toContain('no-such-key');
    });

    it('a valid token from a real provider that is not configured', async () => {
      const token = await outsider.mint('mallory');
      await expectRefused(verifier, token, 'unknown_issuer');
      await expectRefused(verifier, await outsider.signWithIssuerKey({ aud: 'phigate' }), 'unknown_issuer');
    });

    it('a token signed by an untrusted key claiming the trusted issuer', async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const sameKid = await new SignJWT(claimsFor()).setProtectedHeader({ alg: 'ES256', kid: idp.kid }).sign(privateKey);
      await expectRefused(verifier, sameKid, 'bad_signature');
      const embedded = await new SignJWT(claimsFor())
        .setProtectedHeader({ alg: 'ES256', kid: 'attacker', jwk: await exportJWK(publicKey) })
        .sign(privateKey);
      await expectRefused(verifier, embedded, 'unknown_key');
      const noKid = await new SignJWT(claimsFor()).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
      await expectRefused(verifier, noKid, 'bad_signature');
      // The trusted key signing, then a claim swapped in: the signature no longer matches.
      const good = await idp.signWithIssuerKey({ groups: ['engineering'] });
      const [h, , s] = good.split('.');
      const tampered = `${h}.${base64url.encode(JSON.stringify(claimsFor({ groups: ['privacy-officers'] })))}.${s}`;
      await expectRefused(verifier, tampered, 'bad_signature');
    });

    it('truncated tokens', async () => {
      const token = await idp.mint('alice');
      await expectRefused(verifier, token.slice(0, token.lastIndexOf('.')), 'malformed_token');
      await expectRefused(verifier, token.slice(0, token.indexOf('.') + 20), 'malformed_token');
      await expectRefused(verifier, token.slice(0, token.indexOf('.')), 'malformed_token');
      await expectRefused(verifier, token.slice(0, -10), 'bad_signature');
    });

    it('garbage', async () => {
      for (const junk of ['not-a-jwt', 'a.b.c', '...', 'eyJhbGciOiJFUzI1NiJ9.eyJ.x', `${'A'.repeat(20_000)}.b.c`]) {
        await expectRefused(verifier, junk, 'malformed_token');
      }
      await expectRefused(verifier, '', 'missing_token');
      // A JSON payload that is not an object.
      await expectRefused(verifier, unsignedToken({ alg: 'ES256', kid: idp.kid }, ['x'] as unknown as Record<string, unknown>, 'c2ln'), 'malformed_token');
    });

    it('tokens missing sub or exp', async () => {
      await expectRefused(verifier, await idp.signWithIssuerKey({ sub: undefined }), 'missing_claim');
      const err = await expectRefused(verifier, await idp.signWithIssuerKey({ exp: undefined }), 'missing_claim');
      expect(err.message).toContain('exp');
      await expectRefused(verifier, await idp.signWithIssuerKey({ iss: undefined }), 'missing_claim');
      await expectRefused(verifier, await idp.signWithIssuerKey({ exp: 'tomorrow' }), 'malformed_token');
    });

    it('a missing Authorization header, an empty bearer, and Basic auth', async () => {
      for (const header of [undefined, '', '   ', 'Bearer', 'Bearer   ']) {
        expect((await refusal(() => bearerToken(header))).code).toBe('missing_token');
      }
      const basic = Buffer.from('alice:s3cret-password').toString('base64');
      const err = await refusal(() => bearerToken(`Basic ${basic}`));
      expect(err.code).toBe('malformed_token');
      expect(err.message).toContain('Basic');
      expect(err.message).not.toContain(basic);
      expect((await refusal(() => bearerToken('Bearer a b'))).code).toBe('malformed_token');
      expect(bearerToken('bearer   abc.def.ghi ')).toBe('abc.def.ghi');
    });
  });

  it('fails closed with issuer_unavailable when the issuer cannot be reached', async () => {
    const gone = await startTestIdp({ identities: { alice: [] } });
    const token = await gone.signWithIssuerKey({});
    await gone.close();
    const v = new TokenVerifier([{ issuer: gone.issuer, audience: 'phigate' }], { allowHttp: true, httpTimeoutMs: 2000 });
    const err = await expectRefused(v, token, 'issuer_unavailable');
    expect(err.message).toContain(gone.issuer);
    expect(await v.warmUp()).toEqual([{ issuer: gone.issuer, error: expect.objectContaining({ code: 'issuer_unavailable' }) }]);
    // A configured JWKS URI that is down fails closed the same way.
    const v2 = new TokenVerifier([{ issuer: gone.issuer, audience: 'phigate', jwksUri: `${gone.issuer}/jwks` }], { allowHttp: true });
    await expectRefused(v2, token, 'issuer_unavailable');
  });

  it('refuses plain-http issuers unless allowHttp', () => {
    expect(() => new TokenVerifier([{ issuer: idp.issuer, audience: 'phigate' }])).toThrow(/plain http/);
    expect(() => new TokenVerifier([{ issuer: 'not a url', audience: 'phigate' }], { allowHttp: true })).toThrow(/not a URL/);
  });

  it('verifies against two issuers, each with its own audience and groups claim', async () => {
    const second = await startTestIdp({ identities: { bob: ['dba', 'privacy-officers'] }, audience: 'gateway-b', groupsClaim: 'roles' });
    try {
      const v = new TokenVerifier([
        { issuer: `${idp.issuer}/`, audience: 'phigate' },
        { issuer: second.issuer, audience: 'gateway-b', groupsClaim: 'roles' },
      ], { allowHttp: true });
      expect(await v.warmUp()).toEqual([{ issuer: `${idp.issuer}/` }, { issuer: second.issuer }]);
      expect(await v.verify(await idp.mint('alice'))).toMatchObject({ issuer: idp.issuer, subject: 'alice', groups: ['engineering', 'ai-agents'] });
      expect(await v.verify(await second.mint('bob'))).toMatchObject({ issuer: second.issuer, subject: 'bob', groups: ['dba', 'privacy-officers'], kind: 'service' });
      // Each issuer's audience applies to its own tokens only.
      await expectRefused(v, await second.mint('bob', { audience: 'phigate' }), 'wrong_audience');
      await expectRefused(v, await idp.mint('alice', { audience: 'gateway-b' }), 'wrong_audience');
      // The first issuer's groups claim is 'groups': a 'roles' claim there gives no groups.
      expect((await v.verify(await idp.signWithIssuerKey({ roles: ['dba'] }))).groups).toEqual([]);
      // A token signed by one configured issuer cannot claim to be the other.
      await expectRefused(v, await second.signWithIssuerKey({ iss: idp.issuer, aud: 'phigate' }), 'unknown_key');
    } finally {
      await second.close();
    }
  });

  it('tries each key when the JWKS has no kids', async () => {
    const pairs = await Promise.all([generateKeyPair('ES256'), generateKeyPair('ES256')]);
    const keys = await Promise.all(pairs.map(async (p) => ({ ...(await exportJWK(p.publicKey)), alg: 'ES256' })));
    const jwksServer = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    try {
      const issuer = 'https://idp.internal.example';
      const v = new TokenVerifier([{ issuer, audience: 'phigate', jwksUri: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/keys` }], { allowHttp: true });
      const claims = { iss: issuer, aud: 'phigate', sub: 'svc', exp: nowSec() + 60 };
      const signed = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(pairs[1]!.privateKey);
      expect(await v.verify(signed)).toMatchObject({ subject: 'svc', issuer });
      const stranger = await generateKeyPair('ES256');
      await expectRefused(v, await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(stranger.privateKey), 'bad_signature');
    } finally {
      jwksServer.closeAllConnections();
      await new Promise((resolve) => jwksServer.close(resolve));
    }
  });

  it('caches a verdict without refetching, and never past the token expiry', async () => {
    const cacheIdp = await startTestIdp({ identities: { alice: ['engineering'] } });
    let clock = Date.now();
    const v = new TokenVerifier([{ issuer: cacheIdp.issuer, audience: 'phigate' }], {
      allowHttp: true, clockToleranceSec: 0, now: () => new Date(clock), cacheMaxAgeSec: 60, cacheMaxEntries: 2,
    });
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    try {
      const exp = nowSec() + 120;
      const token = await cacheIdp.signWithIssuerKey({ exp });
      fetchSpy.mockClear();
      const first = await v.verify(token);
      expect(fetchSpy).toHaveBeenCalledTimes(2); // discovery document, then JWKS
      await cacheIdp.close(); // from here on the provider cannot answer anything
      fetchSpy.mockClear();
      const again = await Promise.all([v.verify(token), v.verify(token), v.verify(token)]);
      for (const id of again) expect(id).toBe(first);
      expect(fetchSpy).not.toHaveBeenCalled();
      expect(Object.isFrozen(first) && Object.isFrozen(first.groups)).toBe(true);

      // At most cacheMaxAgeSec: re-verified (keys still in memory), so a fresh object.
      clock += 61_000;
      const reverified = await v.verify(token);
      expect(reverified).not.toBe(first);
      expect(reverified).toEqual(first);
      expect(await v.verify(token)).toBe(reverified);

      // Never past exp, even though it was cached less than cacheMaxAgeSec ago.
      clock = exp * 1000;
      await expectRefused(v, token, 'expired');

      // Bounded: with two entries, a third token evicts the oldest.
      clock = Date.now();
      const [t1, t2, t3] = await Promise.all([1, 2, 3].map((n) => cacheIdp.signWithIssuerKey({ sub: `s${n}` })));
      const id1 = await v.verify(t1!);
      await v.verify(t2!);
      await v.verify(t3!);
      expect(await v.verify(t3!)).toBe(await v.verify(t3!));
      const id1again = await v.verify(t1!);
      expect(id1again).not.toBe(id1);
      expect(id1again.subject).toBe('s1');
      expect(fetchSpy).not.toHaveBeenCalled();
    } finally {
      fetchSpy.mockRestore();
      await cacheIdp.close().catch(() => undefined);
    }
  });
  it('checks a repeated token\'s signature once, never past its expiry or a JWKS that dropped its key', async () => {
    const [k1, k2] = await Promise.all([generateKeyPair('ES256'), generateKeyPair('ES256')]);
    const jwk = async (k: CryptoKey, kid: string): Promise<Record<string, unknown>> => ({ ...(await exportJWK(k)), kid, alg: 'ES256' });
    let keys = [await jwk(k1.publicKey, 'k1')];
    let fetches = 0;
    const jwksServer = createServer((_req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    // Only Date is faked: the verifier's clock and jose's JWKS cache age move together, sockets do not.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const issuer = 'https://idp.internal.example';
      const checks: string[] = [];
      const v = new TokenVerifier([{ issuer, audience: 'phigate', jwksUri: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/keys` }], {
        allowHttp: true, clockToleranceSec: 0, onSignatureCheck: (iss) => checks.push(iss),
      });
      const sign = (kid: string, key: CryptoKey, claims: Record<string, unknown>): Promise<string> =>
        new SignJWT({ iss: issuer, aud: 'phigate', exp: nowSec() + 600, ...claims }).setProtectedHeader({ alg: 'ES256', kid }).sign(key);
      const alice = await sign('k1', k1.privateKey, { sub: 'alice' });
      const bob = await sign('k1', k1.privateKey, { sub: 'bob' });

      const first = await v.verify(alice);
      expect(await v.verify(alice)).toBe(first);
      expect(checks).toEqual([issuer]);
      // Another token is its own entry: checked, and never answered with alice's identity.
      expect((await v.verify(bob)).subject).toBe('bob');
      expect((await v.verify(alice)).subject).toBe('alice');
      expect(checks).toHaveLength(2);

      // A refusal is never cached: each attempt is checked again.
      const forged = `${alice.slice(0, alice.lastIndexOf('.'))}.${bob.slice(bob.lastIndexOf('.') + 1)}`;
      await expectRefused(v, forged, 'bad_signature');
      await expectRefused(v, forged, 'bad_signature');
      expect(checks).toHaveLength(4);

      // Cached, then expired: refused at the next use.
      const brief = await sign('k1', k1.privateKey, { sub: 'carol', exp: nowSec() + 5 });
      await v.verify(brief);
      await v.verify(brief);
      expect(checks).toHaveLength(5);
      vi.setSystemTime(Date.now() + 6_000);
      await expectRefused(v, brief, 'expired');

      // The issuer drops k1 for k2; a k2 token makes the JWKS be fetched again (past jose's 30 s
      // cooldown, well within the 60 s verdict TTL): alice's cached verdict ends with the old JWKS.
      keys = [await jwk(k2.publicKey, 'k2')];
      vi.setSystemTime(Date.now() + 31_000);
      const fetched = fetches;
      expect((await v.verify(await sign('k2', k2.privateKey, { sub: 'dave' }))).subject).toBe('dave');
      expect(fetches).toBe(fetched + 1);
      await expectRefused(v, alice, 'unknown_key');
    } finally {
      vi.useRealTimers();
      jwksServer.closeAllConnections();
      await new Promise((resolve) => jwksServer.close(resolve));
    }
  });
});
