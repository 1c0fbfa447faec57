// Secret store in the OS keychain (macOS Keychain, Windows Credential Manager, Secret Service on
// Linux) through @napi-rs/keyring: one entry per (server, profile) holding the credential as JSON.
import { AsyncEntry } from '@napi-rs/keyring';
import { isStoredCredential, StoreUnavailableError, type SecretStore, type StoredCredential } from './types.js';

export const KEYCHAIN_SERVICE = 'phigate';

/** Long enough for a person to answer a desktop unlock prompt, short enough that a wedged D-Bus does not hang the CLI. */
const TIMEOUT_MS = 60_000;

export class KeychainStore implements SecretStore {
  readonly kind = 'keychain';
  readonly description: string;

  constructor(private readonly service = KEYCHAIN_SERVICE) {
    this.description = `OS keychain (service "${service}")`;
  }

  private entry(key: string): AsyncEntry {
    // On Linux, pin the Secret Service: the library would otherwise fall back to the kernel keyring,
    // which is per login session and gone after a reboot, so a login would silently not last.
    return new AsyncEntry(this.service, key, { linux: { store: 'secret-service' } });
  }

  async load(key: string): Promise<StoredCredential | undefined> {
    const text = await guard(() => this.entry(key).getPassword(AbortSignal.timeout(TIMEOUT_MS)));
    if (text === null || text === undefined) return undefined;
    try {
      const v = JSON.parse(text) as unknown;
      return isStoredCredential(v) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  async save(key: string, cred: StoredCredential): Promise<void> {
    const text = JSON.stringify(cred);
    await guard(() => this.entry(key).setPassword(text, AbortSignal.timeout(TIMEOUT_MS)));
    // Read it back: a store that accepts writes but cannot return them is no store.
    const back = await guard(() => this.entry(key).getPassword(AbortSignal.timeout(TIMEOUT_MS)));
    if (back !== text) throw new StoreUnavailableError('the keychain did not return what was written');
  }

  async delete(key: string): Promise<boolean> {
    return guard(() => this.entry(key).deleteCredential(AbortSignal.timeout(TIMEOUT_MS)));
  }
}

/** Runs a keychain operation; the entry constructor itself throws when there is no usable store, so it runs inside. */
async function guard<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new StoreUnavailableError(describeKeychainError(err));
  }
}

/** The library's messages are long and name D-Bus internals; keep the part a user can act on. */
function describeKeychainError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/DBUS_SESSION_BUS_ADDRESS|Failed to connect to socket|autolaunch/i.test(msg)) {
    return 'no Secret Service (no D-Bus session bus)';
  }
  if (/prompt was dismissed|locked/i.test(msg)) return 'the keychain is locked';
  return msg.replace(/\s+/g, ' ').slice(0, 200);
}
