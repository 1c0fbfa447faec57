// What `phigate demo` prints once it serves: commands to paste into another terminal, each on a line
// of its own with nothing after it (no trailing comments: zsh does not take them by default), run
// the way this CLI was started (`npx phigate` from a checkout).
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { DEFAULT_SERVER } from '../cli/credentials/config.js';
import { DEV_IDENTITIES, devClientSecret, type DevIdentity } from '../auth/dev-issuer.js';

/** What each dev identity is for, in the demo's words. */
const ROLES: Record<string, string> = {
  alice: 'an engineer',
  bob: 'a privacy officer, who approves held statements',
  carol: 'an auditor',
  agent: 'an AI coding agent',
};

/**
 * How the user runs this CLI: `npx phigate` under npm or npx (a checkout), `phigate` when the one on
 * PATH is this script, else node with this script's path.
 */
export function cliCommand(env: NodeJS.ProcessEnv = process.env, script = process.argv[1] ?? 'bin/phigate.js'): string {
  if (env['npm_execpath']) return 'npx phigate';
  const self = realpathOrSelf(script);
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, 'phigate');
    if (dir && existsSync(candidate) && realpathOrSelf(candidate) === self) return 'phigate';
  }
  return `node ${shellWord(script)}`;
}

/** `s` as one word for sh, bash and zsh. */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function realpathOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** The one-line client-credentials login of a dev identity, as printed (and as README shows it). */
export function devLoginLine(cli: string, who: DevIdentity, url: string): string {
  const server = url === DEFAULT_SERVER ? '' : ` --server ${url}`;
  return `PHIGATE_CLIENT_ID=dev-${who.name} PHIGATE_CLIENT_SECRET=${devClientSecret(who.name)} ${cli} login --client-credentials${server} --profile ${who.name}`;
}

export function tryItLines(o: { url: string; cli: string; dataDir: string }): string[] {
  const { cli, url } = o;
  const server = url === DEFAULT_SERVER ? '' : ` --server ${url}`;
  return [
    'Log in as each dev identity, no browser needed (one line each):',
    ...DEV_IDENTITIES.map((i) => `    ${devLoginLine(cli, i, url)}`),
    `  ${DEV_IDENTITIES.map((i) => `${i.name} is ${ROLES[i.name] ?? i.groups.join(', ')}`).join('; ')}.`,
    '  Then pick who you are with --profile NAME, for example:',
    `    ${cli} connections --profile alice`,
    `    ${cli} connect ehr --profile alice`,
    `    ${cli} exec --profile agent --name my-agent -- psql -c "select count(*) from visits"`,
    `    ${cli} approve --profile bob`,
    `    ${cli} audit search --since 1h --profile carol`,
    `    ${cli} sessions --profile carol`,
    `    ${cli} audit verify --data-dir ${shellWord(o.dataDir)}`,
    'Or log in as a person in a browser (w3m and lynx work too):',
    `    ${cli} login --no-browser${server}`,
  ];
}
