// docs/operator.md "From demo to production" against the code: every issuer example is a valid
// identity.issuers entry of the policy parser, and every flag of the `phigate doctor` synopsis is a
// flag the command has (no invented options).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parsePolicyFile } from '../../src/policy/file.js';
import { doctorCommand } from '../../src/cli/commands/doctor.js';
import { serverCommand } from '../../src/cli/commands/server.js';

const doc = readFileSync(new URL('../../docs/operator.md', import.meta.url), 'utf8');
const section = doc.slice(doc.indexOf('## From demo to production'), doc.indexOf('## Exit codes'));
const blocks = (lang: string): string[] => [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

/** The `- issuer:` entries of a YAML example, each with its keys, as a list at column 4. */
function issuerEntries(yaml: string): string[] {
  const lines = yaml.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)- issuer:/.exec(lines[i]!);
    if (!m) continue;
    const indent = m[1]!.length;
    const entry = [lines[i]!.slice(indent)];
    for (let j = i + 1; j < lines.length && /^\s/.test(lines[j]!) && lines[j]!.search(/\S/) > indent; j++) entry.push(lines[j]!.slice(indent));
    out.push(entry.map((l) => `    ${l}`).join('\n'));
  }
  return out;
}

describe('docs/operator.md: From demo to production', () => {
  it('shows issuer entries for Okta, Entra ID, Google, Keycloak and GitHub Actions that the policy parser accepts', () => {
    const entries = blocks('yaml').flatMap(issuerEntries);
    expect(entries.length).toBeGreaterThanOrEqual(5);
    for (const entry of entries) {
      const policy = `version: 1\nidentity:\n  issuers:\n${entry}\nconnections:\n  ehr:\n    upstream: postgres://svc@db.internal/ehr\n    allow_groups: [engineering]\n`;
      const p = parsePolicyFile(policy, 'operator.md');
      expect(p.issuers).toHaveLength(1);
    }
  });

  it('gives only flags that `phigate doctor` and `phigate server` have', () => {
    const doctorFlags = new Set(doctorCommand().options.map((o) => o.long));
    const serverFlags = new Set(serverCommand().options.map((o) => o.long));
    const synopsis = blocks('sh').find((b) => b.startsWith('phigate doctor'));
    expect(synopsis).toBeDefined();
    for (const flag of synopsis!.match(/--[a-z-]+/g) ?? []) expect(doctorFlags, flag).toContain(flag);
    for (const b of blocks('sh').filter((x) => x.startsWith('phigate server'))) {
      for (const flag of b.match(/--[a-z-]+/g) ?? []) expect(serverFlags, flag).toContain(flag);
    }
    // doctor takes the server's flags that say where things are.
    for (const f of ['--config', '--listen', '--data-dir', '--store', '--masking-key-file', '--metrics-listen', '--tls-cert', '--tls-key']) {
      expect(serverFlags).toContain(f);
      expect(doctorFlags).toContain(f);
    }
    // One declaration: the same help, environment variable and default on both.
    const shape = (c: ReturnType<typeof serverCommand>) => c.options.filter((o) => doctorFlags.has(o.long) && serverFlags.has(o.long))
      .map((o) => ({ flag: o.long, help: o.description, env: o.envVar, default: o.defaultValue as unknown })).sort((a, b) => a.flag!.localeCompare(b.flag!));
    expect(shape(doctorCommand())).toEqual(shape(serverCommand()));
    expect(shape(doctorCommand())).toHaveLength(8);
  });
});
