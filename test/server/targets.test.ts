// A connection's password_file and tls_ca_file are read once and again whenever they change: every
// way a secret is rotated (rewritten in place, renamed over, a symlink swapped) takes effect at once.
import { mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveUpstreamTarget } from '../../src/server/targets.js';
import type { ConnectionPolicy } from '../../src/policy/file.js';

const dir = mkdtempSync(join(tmpdir(), 'phigate-targets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const conn = (extra: Partial<ConnectionPolicy>): ConnectionPolicy =>
  ({ name: 'ehr', upstream: 'postgres://app@127.0.0.1:5432/ehr', tls: 'disable', ...extra }) as ConnectionPolicy;

describe('resolveUpstreamTarget reads secrets as they are now', () => {
  it('follows a password file rewritten in place, renamed over, and swapped behind a symlink', () => {
    const file = join(dir, 'pw');
    const c = conn({ passwordFile: file });
    writeFileSync(file, 'first\n');
    expect(resolveUpstreamTarget(c).password).toBe('first');
    expect(resolveUpstreamTarget(c).password).toBe('first');
    writeFileSync(file, 'secnd\n'); // same size, in place
    expect(resolveUpstreamTarget(c).password).toBe('secnd');
    writeFileSync(join(dir, 'pw.new'), 'third\n');
    renameSync(join(dir, 'pw.new'), file);
    expect(resolveUpstreamTarget(c).password).toBe('third');

    // Kubernetes mounts secrets as symlinks into a directory that is swapped as a whole.
    const link = join(dir, 'pw-link');
    writeFileSync(join(dir, 'v1'), 'one\n');
    writeFileSync(join(dir, 'v2'), 'two\n');
    symlinkSync(join(dir, 'v1'), link);
    const viaLink = conn({ passwordFile: link });
    expect(resolveUpstreamTarget(viaLink).password).toBe('one');
    unlinkSync(link);
    symlinkSync(join(dir, 'v2'), link);
    expect(resolveUpstreamTarget(viaLink).password).toBe('two');
  });

  it('follows a CA file, and says so when it is gone', () => {
    const file = join(dir, 'ca.pem');
    const c = conn({ tlsCaFile: file, tls: 'verify-full' } as Partial<ConnectionPolicy>);
    writeFileSync(file, 'CA-ONE');
    expect(resolveUpstreamTarget(c).ca?.toString()).toBe('CA-ONE');
    writeFileSync(file, 'CA-TWO, longer');
    expect(resolveUpstreamTarget(c).ca?.toString()).toBe('CA-TWO, longer');
    unlinkSync(file);
    expect(() => resolveUpstreamTarget(c)).toThrow(/cannot read tls_ca_file .*ENOENT/);
  });

});
