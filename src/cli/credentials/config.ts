// Non-secret CLI settings in PHIGATE_HOME/config.json: each profile's server from its last login and
// where each (server, profile) credential was stored, so reads go straight to the right store.
import { configPath } from './paths.js';
import { readJsonFile, writeJsonFile } from './atomic-file.js';

/** Where the CLI looks when neither --server, PHIGATE_SERVER nor a saved login names a gateway. */
export const DEFAULT_SERVER = 'http://127.0.0.1:7432';

export type StoreKind = 'keychain' | 'file';

export interface CliConfig {
  profiles: Record<string, { server?: string }>;
  /** credentialKey(server, profile) -> where its tokens are. */
  credentials: Record<string, { store: StoreKind }>;
}

export function readConfig(home: string): CliConfig {
  const raw = readJsonFile(configPath(home));
  const cfg: CliConfig = { profiles: {}, credentials: {} };
  if (raw === undefined) return cfg;
  if (typeof raw !== 'object' || raw === null) throw new Error(`${configPath(home)} must hold a JSON object`);
  const r = raw as Partial<CliConfig>;
  if (r.profiles && typeof r.profiles === 'object') cfg.profiles = r.profiles;
  if (r.credentials && typeof r.credentials === 'object') cfg.credentials = r.credentials;
  return cfg;
}

/** Read-modify-write of config.json. */
export function updateConfig(home: string, change: (cfg: CliConfig) => void): void {
  const cfg = readConfig(home);
  change(cfg);
  writeJsonFile(configPath(home), cfg, 0o644);
}

/** The server the profile last logged in to, if any (a broken config file is not fatal here). */
export function savedServer(home: string, profile: string): string | undefined {
  try {
    return readConfig(home).profiles[profile]?.server;
  } catch {
    return undefined;
  }
}
