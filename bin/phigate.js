#!/usr/bin/env node
// Entry point: loads the compiled CLI. Run `npm run build` first when working from a checkout.
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`phigate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
