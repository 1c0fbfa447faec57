// `phigate policy check` and the policy version (SHA-256 of the canonical form).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { policyVersion } from '../../src/policy/version.js';
import { run } from '../support/harness.js';

const POLICY = `version: 1
connections:
  ehr:
    upstream: postgres://svc@db:5432/ehr
    allow_groups: [engineering]
default: allow
`;

describe('policy version', () => {
  it('ignores formatting, comments and key order but not content', () => {
    const reformatted = `# comment\ndefault: allow\nconnections: { ehr: { allow_groups: [ engineering ], upstream: "postgres://svc@db:5432/ehr" } }\nversion: 1\n`;
    expect(policyVersion(reformatted)).toBe(policyVersion(POLICY));
    expect(policyVersion(POLICY.replace('default: allow', 'default: block'))).not.toBe(policyVersion(POLICY));
    expect(policyVersion(POLICY)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('phigate policy check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phigate-check-'));

  it('prints the version of a valid file and exits 0', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, POLICY);
    const p = run(['policy', 'check', file, '--json']);
    expect((await p.exited).code).toBe(0);
    const out = JSON.parse(p.stdout());
    expect(out).toMatchObject({ valid: true, version: policyVersion(POLICY), connections: ['ehr'], default: 'allow' });
  });

  it('names file, line and key of an error and exits 1', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, POLICY.replace('default: allow', 'default: maybe'));
    const p = run(['policy', 'check', file]);
    expect((await p.exited).code).toBe(1);
    expect(p.stderr()).toMatch(/bad\.yaml:6:10: default: expected one of allow, block, got "maybe"/);
  });

  it('lists who the server-access baseline is lifted for and the declared functions; policy test applies the lifts', async () => {
    const file = join(dir, 'access.yaml');
    writeFileSync(file, `${POLICY}server_access:\n  files: [dba]\nfunctions:\n  - { name: public.normalize_phone, read_only: true }\n`);
    const json = run(['policy', 'check', file, '--json']);
    expect((await json.exited).code).toBe(0);
    expect(JSON.parse(json.stdout())).toMatchObject({
      server_access: { files: ['dba'], programs: [], alter_system: [], extensions: [], roles: [], remote: [] },
      functions: [{ name: 'public.normalize_phone', read_only: true, masked_readers: false }],
    });
    const text = run(['policy', 'check', file]);
    expect((await text.exited).code).toBe(0);
    expect(text.stdout()).toMatch(/server +baseline on for everyone; lifted for files: dba\n +functions +public\.normalize_phone \(read_only\)/);
    const sql = "SELECT pg_read_file('/etc/passwd')";
    const refused = run(['policy', 'test', '--file', file, '--sql', sql, '--groups', 'engineering', '--json']);
    expect((await refused.exited).code).toBe(0);
    expect(JSON.parse(refused.stdout())).toMatchObject({ decision: 'block', rule: 'server_access.files' });
    const lifted = run(['policy', 'test', '--file', file, '--sql', sql, '--groups', 'dba', '--json']);
    expect((await lifted.exited).code).toBe(0);
    expect(JSON.parse(lifted.stdout())).toMatchObject({ decision: 'allow', rule: null });
  });
});
