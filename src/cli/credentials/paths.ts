// Where the CLI keeps its own files (settings, the credential fallback file, refresh locks):
// PHIGATE_HOME, else the platform's config directory (XDG on Linux, ~/Library/Preferences on macOS,
// %APPDATA% on Windows), except that an existing ~/.config/phigate (where earlier versions put them on
// every platform) keeps being used, so that earlier logins and profiles still work.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The platform's directory for phigate's settings, by the conventions `conf` (env-paths) follows. */
export function platformConfigDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const home = env['HOME']?.trim() || homedir();
  if (platform === 'darwin') return join(home, 'Library', 'Preferences', 'phigate');
  if (platform === 'win32') return join(env['APPDATA']?.trim() || join(home, 'AppData', 'Roaming'), 'phigate', 'Config');
  return join(env['XDG_CONFIG_HOME']?.trim() || join(home, '.config'), 'phigate');
}

/** Where earlier versions kept the files on every platform. */
export function legacyHome(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['XDG_CONFIG_HOME']?.trim() || join(env['HOME']?.trim() || homedir(), '.config'), 'phigate');
}

export function phigateHome(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const explicit = env['PHIGATE_HOME']?.trim();
  if (explicit) return explicit;
  const dir = platformConfigDir(env, platform);
  const legacy = legacyHome(env);
  // Moving a login's files (a plain-text credential among them) behind the user's back is worse than
  // leaving them where they are: an existing directory wins until the user moves it.
  if (legacy !== dir && !existsSync(configPath(dir)) && existsSync(configPath(legacy))) return legacy;
  return dir;
}

export const configPath = (home: string): string => join(home, 'config.json');
export const credentialsFilePath = (home: string): string => join(home, 'credentials.json');
export const locksDir = (home: string): string => join(home, 'locks');
