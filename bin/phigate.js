#!/usr/bin/env node
// Entry point: runs the compiled CLI and exits with its code, so lingering keep-alive sockets never
// hold a finished command open. In a checkout without dist/ it builds first (scripts/prepare.mjs),
// saying so on stderr, rather than failing on a missing module or waiting silently.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
const prepare = new URL('../scripts/prepare.mjs', import.meta.url);
if (!existsSync(main) && existsSync(prepare)) {
  // stdout goes to stderr too: what this command prints on stdout is only its own output.
  const r = spawnSync(process.execPath, [fileURLToPath(prepare)], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) process.exit(1);
}

const { main: run } = await import(main.href);
run(process.argv).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`phigate: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
