// Non-secret CLI settings in PHIGATE_HOME/config.json, through `conf` (a schema, atomic writes): each
// profile's server from its last login and where each (server, profile) credential was stored, so
// reads go straight to the right store. The file format is the one earlier versions wrote.
//
// conf (with ajv) costs ~0.15 s to import, which every command would pay; only writes need it (atomic
// replace, schema check before writing), so it is loaded then, synchronously (require of an ES module,
// Node >= 20.19). Reads, which every command does, parse the file and check it against the same schema
// by hand (readStore below).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type Conf from 'conf';
import type { Schema } from 'conf';
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

const requireModule = createRequire(import.meta.url);

function open(home: string): Conf<Partial<CliConfig>> {
  // The directory also holds the plain-text credential fallback: only its owner may enter it.
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const known = opened.get(home);
  if (known) return known;
  try {
    const { default: ConfClass } = requireModule('conf') as { default: typeof Conf };
    const conf = new ConfClass<Partial<CliConfig>>({
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

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** SCHEMA, checked by hand: the read path every command takes does not load conf and ajv. */
function readStore(path: string): Partial<CliConfig> {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw settingsError(path, err);
  }
  const bad = (what: string): SettingsFileError => new SettingsFileError(path, `not a phigate settings file (${what})`);
  if (!isObject(data)) throw bad('expected a JSON object');
  const { profiles, credentials } = data;
  if (profiles !== undefined) {
    if (!isObject(profiles)) throw bad('`profiles` must be an object');
    for (const [name, p] of Object.entries(profiles)) {
      if (!isObject(p) || (p['server'] !== undefined && typeof p['server'] !== 'string')) throw bad(`\`profiles/${name}\` must be an object with a string server`);
    }
  }
  if (credentials !== undefined) {
    if (!isObject(credentials)) throw bad('`credentials` must be an object');
    for (const [key, c] of Object.entries(credentials)) {
      if (!isObject(c) || (c['store'] !== 'keychain' && c['store'] !== 'file')) throw bad(`\`credentials/${key}/store\` must be keychain or file`);
    }
  }
  return data as Partial<CliConfig>;
}

export function readConfig(home: string): CliConfig {
  // Reading never creates anything: a command run before any login leaves no trace.
  const path = configPath(home);
  if (!existsSync(path)) return { profiles: {}, credentials: {} };
  const store = readStore(path);
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
