// The tests' side of scripts/test-prereqs.mjs (the one list of system tools and their Debian
// packages): a missing tool fails with the package to install, never with a bare ENOENT or a Python
// traceback. The checker runs as a child process so that this module works from dist/ as well.
import { spawnSync } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { BIN } from './proc.js';

export const PREREQS_SCRIPT = join(dirname(dirname(BIN)), 'scripts', 'test-prereqs.mjs');

/**
 * What is missing of `names` (tool names or the commands a test spawns), one line per tool naming its
 * package, or undefined when all are there. Names the list does not know count as present.
 */
export function missingTools(...names: string[]): string | undefined {
  const r = spawnSync(process.execPath, [PREREQS_SCRIPT, '--check', ...names], { encoding: 'utf8', timeout: 60_000 });
  return r.status === 1 ? r.stderr.trim() : undefined;
}

/** A spawn error that names the package when the command is one of the tests' tools. */
export function spawnFailure(file: string, err: Error): Error {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return err;
  const hint = missingTools(basename(file));
  return hint ? new Error(hint, { cause: err }) : err;
}
