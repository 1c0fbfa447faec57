// Non-secret CLI settings in PHIGATE_HOME/config.json, through `conf` (a schema, atomic writes): each
// profile's server from its last login and where each (server, profile) credential was stored, so
// reads go straight to the right store. The file format is the one earlier versions wrote.
import { existsSync, mkdirSync } from 'node:fs';
import Conf, { type Schema } from 'conf';
import { ExitCode, PhigateError } from '../errors.js';
import { configPath } from './paths.js';

/** Where the CLI looks when neither --server, PHIGATE_SERVER nor a saved login names a gateway. */
export const DEFAULT_SERVER = 'http://127.0.0.1:7432';

export type StoreKind = 'keychain' | 'file';

export interface CliConfig {
  profiles: Record<string, { server?: string }>;
  /** credentialKey(server, profile) -> where its tokens are. */
  credentials: Record<string, { store: StoreKind }>;
}

/** JSON schema of the file; other top-level keys are kept as they are (a newer version may add some). */
const SCHEMA: Schema<Partial<CliConfig>> = {
  profiles: {
    type: 'object',
    additionalProperties: { type: 'object', properties: { server: { type: 'string' } } },
  },
  credentials: {
    type: 'object',
    additionalProperties: { type: 'object', properties: { store: { enum: ['keychain', 'file'] } }, required: ['store'] },
  },
};

/** The settings file is unreadable or does not fit the schema: say which file and what to do. */
export class SettingsFileError extends PhigateError {
  constructor(readonly path: string, problem: string) {
    super(`${path}: ${problem}`, ExitCode.Error, 'fix or delete it (`phigate login` writes it again)');
    this.name = 'SettingsFileError';
  }
}

/** One Conf per directory: it compiles the schema once; every read of `store` reads the file again. */
const opened = new Map<string, Conf<Partial<CliConfig>>>();

function open(home: string): Conf<Partial<CliConfig>> {
  // The directory also holds the plain-text credential fallback: only its owner may enter it.
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const known = opened.get(home);
  if (known) return known;
  try {
    const conf = new Conf<Partial<CliConfig>>({
      cwd: home,
      configName: 'config',
      schema: SCHEMA,
      // Credential keys hold URLs (`default@https://gw.example.com`): dots are not paths.
      accessPropertiesByDotNotation: false,
      configFileMode: 0o644,
    });
    opened.set(home, conf);
    return conf;
  } catch (err) {
    throw settingsError(configPath(home), err);
  }
}

function settingsError(path: string, err: unknown): Error {
  const e = err as Error;
  if (e.name === 'SyntaxError') return new SettingsFileError(path, 'not valid JSON');
  if (e.message?.startsWith('Config schema violation:')) return new SettingsFileError(path, `not a phigate settings file (${e.message.slice(24).trim()})`);
  return e;
}

function read(conf: Conf<Partial<CliConfig>>): Partial<CliConfig> {
  try {
    return conf.store;
  } catch (err) {
    throw settingsError(conf.path, err);
  }
}

export function readConfig(home: string): CliConfig {
  // Reading never creates anything: a command run before any login leaves no trace.
  if (!existsSync(configPath(home))) return { profiles: {}, credentials: {} };
  const store = read(open(home));
  return { profiles: { ...store.profiles }, credentials: { ...store.credentials } };
}

/** Read-modify-write of config.json (written atomically: a reader never sees half a file). */
export function updateConfig(home: string, change: (cfg: CliConfig) => void): void {
  const conf = open(home);
  const store = read(conf);
  const cfg: CliConfig = { profiles: { ...store.profiles }, credentials: { ...store.credentials } };
  change(cfg);
  conf.store = { ...store, ...cfg };
}

/** The server the profile last logged in to, if any (a broken config file is not fatal here). */
export function savedServer(home: string, profile: string): string | undefined {
  try {
    return readConfig(home).profiles[profile]?.server;
  } catch {
    return undefined;
  }
}
