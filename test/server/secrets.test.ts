// The masking key an operator provides (--masking-key-file): format and permissions, with the rule
// PostgreSQL applies to its ssl_key_file (root-owned and group-readable is fine for a non-root server,
// which is how a Kubernetes secret volume with fsGroup presents it).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTokenKey, widestKeyMode } from '../../src/server/secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'phigate-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('widestKeyMode', () => {
  it('is 0600 for a file of the server user, 0640 for a root-owned file read by a non-root server', () => {
    expect(widestKeyMode(1000, 1000)).toBe(0o600);
    expect(widestKeyMode(0, 0)).toBe(0o600);
    expect(widestKeyMode(0, 10001)).toBe(0o640);
    expect(widestKeyMode(1000, 10001)).toBe(0o600);
  });
});

describe('readTokenKey', () => {
  it('reads a base64 key of at least 16 bytes from a private file', () => {
    const f = join(dir, 'good.key');
    writeFileSync(f, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
    expect(readTokenKey(f)).toEqual(Buffer.alloc(32, 7));
  });

  it('refuses a short key, a missing file and one others can read, saying how to fix it', () => {
    const short = join(dir, 'short.key');
    writeFileSync(short, Buffer.alloc(8).toString('base64'), { mode: 0o600 });
    expect(() => readTokenKey(short)).toThrow(/does not hold a base64 key of at least 16 bytes \(make one with: openssl rand -base64 32\)/);
    expect(() => readTokenKey(join(dir, 'nothing.key'))).toThrow(/nothing\.key does not exist/);
    const open = join(dir, 'open.key');
    writeFileSync(open, Buffer.alloc(32).toString('base64'));
    chmodSync(open, 0o604);
    expect(() => readTokenKey(open)).toThrow(/open\.key is readable by others; run: chmod 600 /);
  });
});
