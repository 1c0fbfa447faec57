// Where the CLI keeps its own files: PHIGATE_HOME, else the XDG config directory, else ~/.config.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function phigateHome(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['PHIGATE_HOME']?.trim();
  if (explicit) return explicit;
  const xdg = env['XDG_CONFIG_HOME']?.trim();
  return join(xdg || join(homedir(), '.config'), 'phigate');
}

export const configPath = (home: string): string => join(home, 'config.json');
export const credentialsFilePath = (home: string): string => join(home, 'credentials.json');
export const locksDir = (home: string): string => join(home, 'locks');
