// The deployment files (Dockerfile, deploy/kubernetes) against the code they deploy: a flag that is
// renamed, a file that moves or a policy key that changes breaks this test, not a production rollout.
// (Building and running the image: test/e2e/container.test.ts, when a Docker engine answers.)
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { run } from './support/proc.js';

const ROOT = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'phigate-deploy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = run(args);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** `--flag` names `phigate server` accepts, and the environment variables it reads. */
async function serverOptions(): Promise<{ flags: Set<string>; env: Set<string> }> {
  const help = (await cli(['server', '--help'])).stdout;
  return { flags: new Set(help.match(/--[a-z-]+/g)), env: new Set(help.match(/env:\s+([A-Z_]+)/g)?.map((m) => m.replace(/env:\s+/, ''))) };
}

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

  it('copies only what the repository has, and runs bin/phigate.js server with flags that exist', async () => {
    for (const l of lines.filter((x) => x.startsWith('COPY ') && !x.includes('--from='))) {
      const sources = l.split(/\s+/).slice(1, -1);
      for (const s of sources) expect(existsSync(join(ROOT, s)), `${l}: ${s}`).toBe(true);
    }
    const entry = JSON.parse(lines.find((l) => l.startsWith('ENTRYPOINT '))!.slice('ENTRYPOINT '.length)) as string[];
    expect(entry).toEqual(['node', '/opt/phigate/bin/phigate.js']);
    expect(lines.some((l) => l === 'WORKDIR /opt/phigate')).toBe(true);
    expect(existsSync(join(ROOT, 'bin', 'phigate.js'))).toBe(true);
    const cmd = JSON.parse(lines.find((l) => l.startsWith('CMD '))!.slice('CMD '.length)) as string[];
    expect(cmd[0]).toBe('server');
    const { flags } = await serverOptions();
    for (const f of cmd.filter((x) => x.startsWith('--'))) expect(flags.has(f), f).toBe(true);
    // The runtime stage installs production dependencies only, over a dist/ from the build stage.
    expect(text).toMatch(/COPY --from=build \/src\/dist dist/);
    expect(text).toMatch(/npm ci --omit=dev/);
  });
});

describe('deploy/kubernetes/phigate.yaml', () => {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'kubernetes', 'phigate.yaml'), 'utf8')).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJSON() as { kind: string; metadata: { name: string }; data?: Record<string, string>; stringData?: Record<string, string>; spec?: Record<string, unknown> };
  });
  const byKind = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name)!;
  const sts = byKind('StatefulSet', 'phigate') as unknown as {
    spec: { template: { spec: { containers: { args: string[]; envFrom: { secretRef: { name: string } }[]; volumeMounts: { name: string; mountPath: string }[] }[]; volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[] } } };
  };
  const container = sts.spec.template.spec.containers[0]!;
  const argAfter = (flag: string): string => container.args[container.args.indexOf(flag) + 1]!;

  it('runs the server with flags and environment variables it has', async () => {
    expect(container.args[0]).toBe('server');
    const { flags, env } = await serverOptions();
    for (const f of container.args.filter((x) => x.startsWith('--'))) expect(flags.has(f), f).toBe(true);
    const secret = byKind('Secret', container.envFrom[0]!.secretRef.name);
    expect(env.has('PHIGATE_STORE_URL')).toBe(true);
    expect(Object.keys(secret.stringData!)).toContain('PHIGATE_STORE_URL');
  });

  it('mounts every file the arguments name, from a ConfigMap or Secret the manifest defines', () => {
    for (const flag of ['--config', '--masking-key-file']) {
      const path = argAfter(flag);
      const mount = container.volumeMounts.find((m) => path.startsWith(`${m.mountPath}/`));
      expect(mount, `${flag} ${path}`).toBeDefined();
      const volume = sts.spec.template.spec.volumes.find((v) => v.name === mount!.name)!;
      const file = path.slice(mount!.mountPath.length + 1);
      const source = volume.configMap ? byKind('ConfigMap', volume.configMap.name).data : byKind('Secret', volume.secret!.secretName).stringData;
      expect(Object.keys(source ?? {}), `${flag} ${path}`).toContain(file);
    }
    expect(container.volumeMounts.find((m) => m.mountPath === argAfter('--data-dir'))?.name).toBe('data');
  });

  it('ships a policy that phigate policy check accepts, with each password_env in the Secret', async () => {
    const policy = byKind('ConfigMap', 'phigate-policy').data!['phigate.yaml']!;
    const file = join(tmp, 'phigate.yaml');
    writeFileSync(file, policy);
    const checked = await cli(['policy', 'check', file]);
    expect(checked.stderr).toBe('');
    expect(checked.code).toBe(0);
    const secret = byKind('Secret', container.envFrom[0]!.secretRef.name);
    for (const m of policy.matchAll(/password_env:\s*(\S+)/g)) expect(Object.keys(secret.stringData!)).toContain(m[1]);
  });
});
