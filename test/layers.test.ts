// The layering rule of `npm run lint` (.dependency-cruiser.cjs, docs/architecture.md): it fails on a
// deliberately wrong import into the sans-I/O core and on a type-only cycle, allows the listed
// exceptions, and the real tree has no violation, cycles included.
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
  cycle?: { name: string }[];
}

/** depcruise over `dir`/src with the project's config; its violations. */
async function cruise(dir: string): Promise<Violation[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], {
    cwd: dir, maxBuffer: 256 * 1024 * 1024,
  }).catch((err: { stdout?: string; stderr?: string }) => {
    // Exit status 1 on violations is the point here; the JSON is on stdout either way.
    if (!err.stdout) throw new Error(`depcruise failed: ${err.stderr}`);
    return { stdout: err.stdout };
  });
  return (JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

const fixtures: string[] = [];
afterAll(() => {
  for (const d of fixtures) rmSync(d, { recursive: true, force: true });
});

/** A small project with the real config, tsconfig and node_modules, and the files given. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'phigate-layers-'));
  fixtures.push(dir);
  cpSync(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src'] }));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const CLEAN = {
  'src/server/listener.ts': "import { createServer } from 'node:net';\nimport { decide } from '../policy/decide.js';\nexport const listen = [createServer, decide];\n",
  'src/policy/decide.ts': "export const decide = (sql: string): boolean => sql.length > 0;\n",
  // A listed exception: the policy file is read from disk here.
  'src/policy/file.ts': "import { readFileSync } from 'node:fs';\nexport const load = (p: string): string => readFileSync(p, 'utf8');\n",
  // The store does I/O and imports the kernel, as it may.
  'src/common/log.ts': 'export interface Logger { info(m: string): void }\n',
  'src/store/shared-db.ts': "import pg from 'pg';\nimport type { Logger } from '../common/log.js';\nexport const open = (log: Logger): unknown => [pg, log];\n",
};

describe('layering lint (dependency-cruiser)', () => {
  it('passes a project that keeps the rule, and fails each kind of wrong import', async () => {
    expect(await cruise(project(CLEAN))).toEqual([]);

    const wrong = project({
      ...CLEAN,
      'src/policy/decide.ts': "import type { Gateway } from '../server/gateway.js';\nexport const decide = (sql: string, _g?: Gateway): boolean => sql.length > 0;\n",
      'src/server/gateway.ts': 'export interface Gateway { start(): void }\n',
      // The kernel and the store sit below their users.
      'src/common/log.ts': "import type { Gateway } from '../server/gateway.js';\nexport interface Logger { info(m: string, g?: Gateway): void }\n",
      'src/store/shared-db.ts': "import type { Logger } from '../common/log.js';\nimport type { Gateway } from '../server/gateway.js';\nexport interface Db { log: Logger; g?: Gateway }\n",
      'src/masking/fetch.ts': "import { request } from 'node:http';\nimport pg from 'pg';\nimport WebSocket from 'ws';\nexport const io = [request, pg, WebSocket];\n",
      'src/pg/a.ts': "import type { B } from './b.js';\nexport interface A { b?: B }\n",
      'src/pg/b.ts': "import type { A } from './a.js';\nexport interface B { a?: A }\n",
    });
    const found = (await cruise(wrong)).map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();
    expect(found).toEqual([
      'common-is-the-kernel: src/common/log.ts -> src/server/gateway.ts',
      'core-does-no-io: src/masking/fetch.ts -> http',
      'core-does-no-io: src/masking/fetch.ts -> node_modules/pg/esm/index.mjs',
      'core-does-no-io: src/masking/fetch.ts -> node_modules/ws/wrapper.mjs',
      // A type-only import counts: the core may not even name the edges' types.
      'core-imports-no-edges: src/common/log.ts -> src/server/gateway.ts',
      'core-imports-no-edges: src/policy/decide.ts -> src/server/gateway.ts',
      // One report per cycle, however many modules it has.
      'no-circular: src/pg/a.ts -> src/pg/b.ts',
      'store-below-its-users: src/store/shared-db.ts -> src/server/gateway.ts',
    ]);
  });

  it('the real tree: no violations, and no import cycles (type-only ones included)', async () => {
    const violations = await cruise(ROOT);
    expect(violations.filter((v) => v.rule.name === 'no-circular')).toEqual([]);
    expect(violations).toEqual([]);
  });
});
