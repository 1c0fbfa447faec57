// The first run in a checkout never waits silently: bin/phigate.js builds a missing dist/ and
// scripts/prepare.mjs (npm's prepare, also run by `npx phigate`'s first run) builds a missing or
// stale one, each saying so on stderr while stdout carries only the command's own output; an
// up-to-date dist/ is left alone, without a word. Runs the real scripts and the real TypeScript
// compiler on a one-file copy of the layout (bin/, scripts/, src/cli/main.ts, tsconfig files).
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'phigate-first-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const d of ['bin', 'scripts', 'src/cli']) mkdirSync(join(dir, d), { recursive: true });
copyFileSync(join(ROOT, 'bin', 'phigate.js'), join(dir, 'bin', 'phigate.js'));
copyFileSync(join(ROOT, 'scripts', 'prepare.mjs'), join(dir, 'scripts', 'prepare.mjs'));
symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: [], outDir: 'dist', rootDir: '.' } }));
writeFileSync(join(dir, 'tsconfig.build.json'), JSON.stringify({ extends: './tsconfig.json', include: ['src'] }));
writeFileSync(join(dir, 'src', 'cli', 'main.ts'),
  'export async function main(argv: string[]): Promise<number> {\n  console.log(JSON.stringify({ args: argv.slice(2) }));\n  return 0;\n}\n');
const BUILT = join(dir, 'dist', 'src', 'cli', 'main.js');

const node = (args: string[]) => spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, npm_command: 'install' } });

describe('the first run in a checkout', () => {
  it('bin/phigate.js builds a missing dist/ saying so on stderr; stdout is the command\'s own (--json stays clean)', () => {
    expect(existsSync(BUILT)).toBe(false);
    const r = node([join(dir, 'bin', 'phigate.js'), 'whoami', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ args: ['whoami', '--json'] });
    expect(r.stderr).toMatch(/^phigate: building dist\/ with the TypeScript compiler \(first run\), which takes a while\.\.\.\nphigate: built dist\/ in \d+\.\d s\n$/);
    expect(existsSync(BUILT)).toBe(true);
  });

  it('prepare leaves an up-to-date dist/ alone without a word, and rebuilds a stale one saying why', () => {
    const before = statSync(BUILT).mtimeMs;
    const same = node([join(dir, 'scripts', 'prepare.mjs')]);
    expect(same).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(statSync(BUILT).mtimeMs).toBe(before);
    const later = new Date(before + 60_000);
    utimesSync(join(dir, 'src', 'cli', 'main.ts'), later, later);
    const stale = node([join(dir, 'scripts', 'prepare.mjs')]);
    expect(stale.status, stale.stderr).toBe(0);
    expect(stale.stdout).toBe('');
    expect(stale.stderr).toMatch(/^phigate: building dist\/ with the TypeScript compiler \(the sources changed since the last build\)/);
    expect(statSync(BUILT).mtimeMs).toBeGreaterThan(before);
  });
});
