// Plain-text fallback secret store: PHIGATE_HOME/credentials.json, mode 0600, for machines without
// a working OS keychain (headless Linux, CI), as `gh` does.
import { statSync } from 'node:fs';
import { credentialsFilePath } from './paths.js';
import { readJsonFile, writeJsonFile } from './atomic-file.js';
import { isStoredCredential, type SecretStore, type StoredCredential } from './types.js';

interface CredentialsFile {
  version: 1;
  credentials: Record<string, StoredCredential>;
}

export class FileStore implements SecretStore {
  readonly kind = 'file';
  readonly path: string;
  readonly description: string;

  constructor(home: string) {
    this.path = credentialsFilePath(home);
    this.description = `${this.path} (plain text, mode 0600)`;
  }

  private read(): CredentialsFile {
    const raw = readJsonFile(this.path);
    const out: CredentialsFile = { version: 1, credentials: {} };
    if (raw && typeof raw === 'object' && 'credentials' in raw && typeof raw.credentials === 'object' && raw.credentials) {
      for (const [k, v] of Object.entries(raw.credentials as Record<string, unknown>)) {
        if (isStoredCredential(v)) out.credentials[k] = v;
      }
    }
    return out;
  }

  async load(key: string): Promise<StoredCredential | undefined> {
    return this.read().credentials[key];
  }

  async save(key: string, cred: StoredCredential): Promise<void> {
    const file = this.read();
    file.credentials[key] = cred;
    writeJsonFile(this.path, file, 0o600);
  }

  async delete(key: string): Promise<boolean> {
    const file = this.read();
    if (!(key in file.credentials)) return false;
    delete file.credentials[key];
    writeJsonFile(this.path, file, 0o600);
    return true;
  }

  /** Permission bits of the file, or undefined when it does not exist (for tests and whoami). */
  mode(): number | undefined {
    try {
      return statSync(this.path).mode & 0o777;
    } catch {
      return undefined;
    }
  }
}
