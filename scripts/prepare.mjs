// Builds dist/ when it is missing or older than the sources, saying so on stderr (never stdout:
// `phigate --json` output stays clean), so no first run waits silently. Runs as npm's `prepare`
// step (`npm install` / `npm ci` in a checkout, and `npx phigate`'s first run in one, where npm
// hides a script's output: the progress line then goes to the terminal itself) and from
// bin/phigate.js when dist/ is missing. A production install (`npm ci --omit=dev`, e.g. an image's
// runtime stage) has no compiler: it uses the dist/ built beforehand (copied from a build stage) and
// fails with the reason when there is none.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = join(root, 'dist', 'src', 'cli', 'main.js');
// What tsconfig.build.json compiles, and the settings it compiles with.
const SOURCES = ['src', 'scripts', join('test', 'support'), 'tsconfig.json', 'tsconfig.build.json'];

/** The newest modification time under `path` (a file or a directory tree), 0 when absent. */
function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  // A directory's own time changes when a file in it is deleted or renamed.
  let m = st.mtimeMs;
  for (const e of readdirSync(path)) m = Math.max(m, newest(join(path, e)));
  return m;
}

/** Why dist/ needs building, or undefined when it is up to date. */
function staleness() {
  if (!existsSync(built)) return 'first run';
  const src = Math.max(...SOURCES.map((p) => newest(join(root, p))));
  return src > statSync(built).mtimeMs ? 'the sources changed since the last build' : undefined;
}

/** Progress for the user: stderr, and the terminal too when npm captures this script's output. */
function say(line) {
  process.stderr.write(line + '\n');
  if (process.env['npm_command'] !== 'exec' || process.stderr.isTTY) return;
  try {
    const tty = openSync('/dev/tty', 'w');
    writeSync(tty, line + '\n');
    closeSync(tty);
  } catch {
    // no terminal (CI, a pipe): npm shows the captured output if the build fails
  }
}

const why = staleness();
if (!why) process.exit(0);

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  tsc = undefined;
}
if (!tsc) {
  if (existsSync(built)) process.exit(0);
  process.stderr.write('phigate: cannot build: the TypeScript compiler is not installed (npm ci --omit=dev?) and there is no dist/.\n' +
    'hint: build in a checkout with dev dependencies (npm ci && npm run build) and copy dist/ along\n');
  process.exit(1);
}
say(`phigate: building dist/ with the TypeScript compiler (${why}), which takes a while...`);
const started = Date.now();
// tsc reports on stdout: sent to stderr with the rest.
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: ['ignore', 2, 2], cwd: root });
if (r.status !== 0) {
  say(`phigate: the build failed (tsc exit ${r.status ?? r.signal}); its errors are above. Fix them and run \`npm run build\`.`);
  process.exit(r.status ?? 1);
}
say(`phigate: built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
