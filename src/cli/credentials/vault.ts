// Decides where a (server, profile) credential lives: the OS keychain when one works, else the
// plain-text file (with a warning at login), or the file silently with --insecure-storage.
// Remembers the choice in config.json so later commands read the right store without probing.
import { ExitCode, PhigateError } from '../errors.js';
import { readConfig, updateConfig, type StoreKind } from './config.js';
import { FileStore } from './file-store.js';
import { KeychainStore } from './keychain.js';
import { credentialKey, StoreUnavailableError, type SecretStore, type StoredCredential } from './types.js';

export interface VaultOptions {
  home: string;
  keychain?: SecretStore;
  file?: SecretStore;
}

export interface SaveResult {
  store: SecretStore;
  /** Set when the keychain was wanted but did not work: why, for the plain-text warning. */
  fallbackReason?: string;
}

export interface Loaded {
  cred: StoredCredential;
  store: SecretStore;
}

export class CredentialVault {
  readonly home: string;
  readonly keychain: SecretStore;
  readonly file: SecretStore;

  constructor(opts: VaultOptions) {
    this.home = opts.home;
    this.keychain = opts.keychain ?? new KeychainStore();
    this.file = opts.file ?? new FileStore(opts.home);
  }

  private storeOf(kind: StoreKind): SecretStore {
    return kind === 'keychain' ? this.keychain : this.file;
  }

  /** Stores a fresh login and makes `server` the profile's default. */
  async saveLogin(cred: StoredCredential, opts: { insecureStorage?: boolean } = {}): Promise<SaveResult> {
    const key = credentialKey(cred.server, cred.profile);
    const before = readConfig(this.home).credentials[key]?.store;
    let result: SaveResult;
    if (opts.insecureStorage) {
      await this.file.save(key, cred);
      result = { store: this.file };
    } else {
      try {
        await this.keychain.save(key, cred);
        result = { store: this.keychain };
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
        await this.file.save(key, cred);
        result = { store: this.file, fallbackReason: err.message };
      }
    }
    // A login that moved stores must not leave the old tokens behind.
    if (before && before !== result.store.kind) await this.storeOf(before).delete(key).catch(() => false);
    updateConfig(this.home, (cfg) => {
      cfg.credentials[key] = { store: result.store.kind };
      cfg.profiles[cred.profile] = { ...cfg.profiles[cred.profile], server: cred.server };
    });
    return result;
  }

  /** Writes renewed tokens back where the credential already lives (no warning: the user chose at login). */
  async update(cred: StoredCredential, store: SecretStore): Promise<void> {
    await store.save(credentialKey(cred.server, cred.profile), cred);
  }

  async load(server: string, profile: string): Promise<Loaded | undefined> {
    const key = credentialKey(server, profile);
    const recorded = readConfig(this.home).credentials[key]?.store;
    if (recorded) {
      const store = this.storeOf(recorded);
      let cred: StoredCredential | undefined;
      try {
        cred = await store.load(key);
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
        throw new PhigateError(`your login to ${server} is in the ${store.description}, which cannot be reached here (${err.message})`,
          ExitCode.NotAuthenticated, 'unlock the keychain, or run `phigate login --insecure-storage` to keep this login in a file');
      }
      return cred ? { cred, store } : undefined;
    }
    // No record (config.json deleted or written by another tool): look in both, file first because it cannot prompt.
    const fromFile = await this.file.load(key);
    if (fromFile) return { cred: fromFile, store: this.file };
    try {
      const fromKeychain = await this.keychain.load(key);
      return fromKeychain ? { cred: fromKeychain, store: this.keychain } : undefined;
    } catch (err) {
      if (err instanceof StoreUnavailableError) return undefined;
      throw err;
    }
  }

  /**
   * Deletes the credential from both stores (a keychain that cannot be reached holds nothing we can
   * delete, which is reported, not fatal) and forgets the record.
   */
  async delete(server: string, profile: string): Promise<{ deleted: StoreKind[]; problems: string[] }> {
    const key = credentialKey(server, profile);
    const deleted: StoreKind[] = [];
    const problems: string[] = [];
    const recorded = readConfig(this.home).credentials[key]?.store;
    for (const store of [this.keychain, this.file]) {
      try {
        if (await store.delete(key)) deleted.push(store.kind);
      } catch (err) {
        // Only worth mentioning when the credential was supposed to be there.
        if (recorded === store.kind) problems.push(`${store.description}: ${(err as Error).message}`);
      }
    }
    updateConfig(this.home, (cfg) => {
      delete cfg.credentials[key];
    });
    return { deleted, problems };
  }
}

export function plainTextWarning(path: string, reason: string): string {
  return `phigate: warning: no OS keychain available (${reason}); your login was stored in plain text in ${path}. ` +
    'Anyone who can read that file as you can use it. Use --insecure-storage to choose this without the warning.';
}
