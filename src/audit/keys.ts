// The server's checkpoint signing key (Ed25519) and the signed checkpoint format. Key files are
// created once under the data directory (mode 0600) and never rotated silently: a new key would make
// every older checkpoint look forged. Signing and checking are pure functions over data.
import { errnoOf } from '../common/errors.js';
import {
  createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from './canonical.js';
import { AuditKeyError } from './errors.js';

/** Under the server's data directory. */
export const SIGNING_KEY_FILE = 'audit-signing-key.pem';

/**
 * A signed statement that record `seq` of the log has hash `hash`: `sig` is the Ed25519 signature
 * of canonicalJson({ at, hash, seq }); `key` names the signing key (keyFingerprint).
 */
export interface Checkpoint {
  seq: number;
  hash: string;
  at: string;
  key: string;
  sig: string;
}

export function checkpointPayload(c: Pick<Checkpoint, 'seq' | 'hash' | 'at'>): string {
  return canonicalJson({ at: c.at, hash: c.hash, seq: c.seq });
}

export function signCheckpoint(head: { seq: number; hash: string; at: string }, key: KeyObject): Checkpoint {
  const sig = sign(null, Buffer.from(checkpointPayload(head)), key).toString('base64');
  return { seq: head.seq, hash: head.hash, at: head.at, key: keyFingerprint(key), sig };
}

/** Whether `c.sig` is a valid signature of its payload by `publicKey` (its `key` field is not trusted). */
export function checkpointSignatureValid(c: Checkpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(checkpointPayload(c)), publicKey, Buffer.from(c.sig, 'base64'));
  } catch {
    return false;
  }
}

/** The raw 32-byte Ed25519 public key. */
function rawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ format: 'der', type: 'spki' });
  // SPKI for Ed25519 is a fixed 12-byte prefix followed by the key.
  return der.subarray(der.length - 32);
}

/** `ed25519:` + the first 16 hex digits of SHA-256 of the raw public key: short enough to compare by eye. */
export function keyFingerprint(key: KeyObject): string {
  return `ed25519:${sha256Hex(rawPublicKey(key)).slice(0, 16)}`;
}

export function publicKeyPem(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ format: 'pem', type: 'spki' }).toString();
}

export function parsePublicKey(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new AuditKeyError(source, `not a PEM public key (${(err as Error).message})`, 'expected the output of `phigate server --print-public-key`');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AuditKeyError(source, `is a ${key.asymmetricKeyType} key; checkpoints are signed with Ed25519`);
  return key;
}

/**
 * The data directory's signing key, created (mode 0600, written and synced before use) on first
 * start. A key file that exists but is unreadable, malformed or too open is an error, never replaced.
 */
export function loadOrCreateSigningKey(dataDir: string): KeyObject {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, SIGNING_KEY_FILE);
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    let fd: number;
    try {
      // wx: two servers starting at once must not each write a key and sign with different ones.
      fd = openSync(file, 'wx', 0o600);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      return loadSigningKey(file);
    }
    try {
      writeSync(fd, pem);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(file, 0o600);
    return privateKey;
  }
  return loadSigningKey(file);
}

/** An existing signing key file, checked as the server checks it at start (mode, PEM, Ed25519); never created. */
export function loadSigningKey(file: string): KeyObject {
  const mode = statSync(file).mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new AuditKeyError(file, `is readable by others (mode ${mode.toString(8).padStart(4, '0')})`, `run: chmod 600 ${file}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AuditKeyError(file, `is not a PEM private key (${(err as Error).message})`,
      'restore it from backup; a new key would make every earlier checkpoint unverifiable');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AuditKeyError(file, `holds a ${key.asymmetricKeyType} key; expected Ed25519`);
  return key;
}

/**
 * What `phigate server --print-public-key` prints: the PEM public key and its fingerprint, which
 * auditors pin when verifying (`phigate audit verify --public-key FILE`).
 */
export function formatPublicKey(dataDir: string): string {
  const key = loadOrCreateSigningKey(dataDir);
  return `${publicKeyPem(key).trimEnd()}\n# fingerprint ${keyFingerprint(key)}\n`;
}
