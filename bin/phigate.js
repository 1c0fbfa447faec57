#!/usr/bin/env node
// Entry point: runs the compiled CLI (`npm run build` first when working from a checkout) and exits
// with its code, so lingering keep-alive sockets never hold a finished command open.
import { main } from '../dist/src/cli/main.js';

main(process.argv).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`phigate: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
