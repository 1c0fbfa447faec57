// Server-side secrets kept under the data directory: the tokenization key for masking (stable
// across restarts so tokens stay joinable). Created once, mode 0600, never printed.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';

export const TOKEN_KEY_FILE = 'masking-token.key';

export function loadOrCreateTokenKey(dataDir: string): Buffer {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, TOKEN_KEY_FILE);
  if (!existsSync(file)) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, randomBytes(32).toString('base64'));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return readTokenKey(file);
}

/**
 * A tokenization key the operator provides (`--masking-key-file`): replicas that share one key give
 * equal tokens for equal values, so tokenized columns join across them. Base64, at least 16 bytes,
 * readable by the owner only.
 */
export function readTokenKey(file: string): Buffer {
  let text: string;
  try {
    if ((statSync(file).mode & 0o077) !== 0) throw new Error(`${file} is readable by others; run: chmod 600 ${file}`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'ENOENT' ? `${file} does not exist` : e.message);
  }
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length < 16) throw new Error(`${file} does not hold a base64 key of at least 16 bytes (make one with: openssl rand -base64 32)`);
  return key;
}
