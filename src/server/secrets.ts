// Server-side secrets kept under the data directory: the tokenization key for masking (stable
// across restarts so tokens stay joinable). Created once, mode 0600, never printed.
import { errnoOf } from '../common/errors.js';
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
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
  }
  return readTokenKey(file);
}

/** The widest permissions a key file may have: 0600, or 0640 when root owns it and the server is not root. */
export function widestKeyMode(fileUid: number, processUid: number): number {
  return fileUid === 0 && processUid !== 0 ? 0o640 : 0o600;
}

/**
 * A tokenization key the operator provides (`--masking-key-file`): replicas that share one key give
 * equal tokens for equal values, so tokenized columns join across them. Base64, at least 16 bytes.
 * Permissions as PostgreSQL wants its ssl_key_file: 0600 or less, or, when root owns the file and
 * the server runs as another user (a Kubernetes secret volume with fsGroup), 0640 or less.
 */
export function readTokenKey(file: string): Buffer {
  let text: string;
  try {
    const st = statSync(file);
    const widest = widestKeyMode(st.uid, process.getuid?.() ?? st.uid);
    if ((st.mode & 0o777 & ~widest) !== 0) throw new Error(`${file} is readable by others; run: chmod ${widest.toString(8)} ${file}`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'ENOENT' ? `${file} does not exist` : e.message);
  }
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length < 16) throw new Error(`${file} does not hold a base64 key of at least 16 bytes (make one with: openssl rand -base64 32)`);
  return key;
}
