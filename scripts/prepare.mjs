// npm's `prepare` step (runs on `npm install` / `npm ci` in a checkout): builds dist/ with the
// TypeScript compiler when it is installed. A production install (`npm ci --omit=dev`, e.g. an
// image's runtime stage) has no compiler: it uses the dist/ built beforehand (copied from a build
// stage) and fails with the reason when there is none.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url);
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  tsc = undefined;
}
if (!tsc) {
  if (existsSync(new URL('dist/src/cli/main.js', root))) process.exit(0);
  process.stderr.write('phigate: cannot build: the TypeScript compiler is not installed (npm ci --omit=dev?) and there is no dist/.\n' +
    'hint: build in a checkout with dev dependencies (npm ci && npm run build) and copy dist/ along\n');
  process.exit(1);
}
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
