// The system tools the test suite needs beside Node, each with the Debian/Ubuntu package that brings
// it: the one list `npm test` (pretest), .ci/run and the tests' own missing-tool messages read. Run
// before anything is built (plain JavaScript, no dependencies): as root or with passwordless sudo it
// installs what is missing with apt-get and says what; otherwise it prints the exact command and exits 1.
//
//   node scripts/test-prereqs.mjs              check everything; install (root/sudo) or print the command
//   node scripts/test-prereqs.mjs --check      check everything and print the command; never installs
//   node scripts/test-prereqs.mjs --check T..  check only tools T (names or commands); never installs
//
// PHIGATE_PREREQS_MISSING=a,b makes the named tools count as missing (to try the messages).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * What the tests need. `commands`: all on PATH; `python`+`module`: importable by that interpreter
 * (Debian's own, whose python3-psycopg is what gets installed, even when a pyenv python3 comes first);
 * `file`: exists. `aliases` are other commands a test spawns that this package brings.
 * @type {readonly import('./test-prereqs.d.mts').Prereq[]}
 */
export const PREREQS = Object.freeze([
  { name: 'psql', commands: ['psql'], package: 'postgresql-client', for: 'end-to-end tests with a real psql' },
  // pgbench ships with the server package on Debian; `postgresql` is the release's default version.
  { name: 'pgbench', commands: ['pgbench'], package: 'postgresql', for: 'pgbench, crash and limit tests' },
  { name: 'openssl', commands: ['openssl'], package: 'openssl', for: 'test TLS certificates' },
  { name: 'curl', commands: ['curl'], package: 'curl', for: 'the dev login driven with curl' },
  { name: 'tmux', commands: ['tmux'], package: 'tmux', for: 'terminal tests: demo tour, approve, replay, completions' },
  { name: 'bash', commands: ['bash'], package: 'bash', for: 'shell completion tests' },
  { name: 'zsh', commands: ['zsh'], package: 'zsh', for: 'shell completion tests' },
  { name: 'fish', commands: ['fish'], package: 'fish', for: 'shell completion tests' },
  // `dbus` exists on every Debian and Ubuntu release (Debian 12 split dbus-run-session out into dbus-daemon, which it depends on).
  { name: 'dbus-run-session', commands: ['dbus-run-session'], package: 'dbus', for: 'the OS keychain test' },
  { name: 'gnome-keyring-daemon', commands: ['gnome-keyring-daemon'], package: 'gnome-keyring', for: 'the OS keychain test' },
  { name: 'secret-tool', commands: ['secret-tool'], package: 'libsecret-tools', for: 'the OS keychain test' },
  { name: 'psycopg', python: '/usr/bin/python3', module: 'psycopg', aliases: ['python3', '/usr/bin/python3'], package: 'python3-psycopg', for: 'the psycopg 3 client tests' },
  { name: 'jdk', commands: ['javac', 'java'], package: 'default-jdk-headless', for: 'the pgjdbc client test' },
  { name: 'pgjdbc', file: '/usr/share/java/postgresql.jar', package: 'libpostgresql-jdbc-java', for: 'the pgjdbc client test' },
]);

/** The entries a tool name, command or alias refers to (unknown names: none). */
export function findPrereqs(prereqs, names) {
  return prereqs.filter((p) => names.some((n) => n === p.name || p.commands?.includes(n) || p.aliases?.includes(n)));
}

const APT = 'apt-get install -y --no-install-recommends';

/**
 * What to do about the missing entries, as data: nothing, install (how: 'root' or 'sudo'), or tell
 * the user the command (how: 'tell'; 'no-apt' when this is not a Debian/Ubuntu machine).
 * @returns {import('./test-prereqs.d.mts').Plan}
 */
export function installPlan(missing, how) {
  if (missing.length === 0) return { action: 'none', missing: [], packages: [], commands: [] };
  const packages = [...new Set(missing.map((p) => p.package))].sort();
  const sudo = how === 'root' ? '' : 'sudo ';
  const commands = [`${sudo}apt-get update`, `${sudo}${APT} ${packages.join(' ')}`];
  const action = how === 'root' || how === 'sudo' ? 'install' : 'tell';
  return { action, missing, packages, commands, ...(how === 'no-apt' ? { noApt: true } : {}) };
}

/** The lines to print for a plan (stderr): what is missing, for what, and what is (or to be) run. */
export function planMessage(plan) {
  if (plan.action === 'none') return '';
  const width = Math.max(...plan.missing.map((p) => p.name.length));
  const lines = [`phigate tests: ${plan.missing.length} system ${plan.missing.length === 1 ? 'tool is' : 'tools are'} missing:`];
  for (const p of plan.missing) lines.push(`  ${p.name.padEnd(width)}  Debian package ${p.package} (${p.for})`);
  if (plan.action === 'install') {
    lines.push(`installing ${plan.packages.join(' ')} with apt-get:`, ...plan.commands.map((c) => `  ${c}`));
  } else if (plan.noApt) {
    lines.push('this machine has no apt-get: install the equivalents of those Debian packages, then run the tests again');
  } else {
    lines.push(`install ${plan.missing.length === 1 ? 'it' : 'them'}, then run the tests again:`, `  ${plan.commands.join(' && ')}`);
  }
  return lines.join('\n') + '\n';
}

/** One line for a test that cannot run a tool: what is missing and the package to install. */
export function toolMessage(p) {
  const what = p.module ? `the Python module ${p.module} (for ${p.python})` : p.file ? p.file : p.commands.join(' and ');
  return `${what} ${p.commands && p.commands.length > 1 ? 'are' : 'is'} not installed, needed for ${p.for}: ` +
    `install the Debian package ${p.package} (sudo ${APT} ${p.package}); \`npm test\` checks every prerequisite first`;
}

// ---- I/O: probing this machine, running apt-get ----

function onPath(cmd) {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Is the entry present on this machine? (PHIGATE_PREREQS_MISSING names ones to treat as absent.) */
export function isPresent(p) {
  const forced = (process.env['PHIGATE_PREREQS_MISSING'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (findPrereqs([p], forced).length > 0) return false;
  if (p.commands && !p.commands.every(onPath)) return false;
  if (p.file && !existsSync(p.file)) return false;
  if (p.module) return spawnSync(p.python, ['-c', `import ${p.module}`], { stdio: 'ignore', timeout: 30_000 }).status === 0;
  return true;
}

/** How missing packages can be installed here: as root, with passwordless sudo, or not at all. */
function installer() {
  if (!onPath('apt-get')) return 'no-apt';
  if (process.getuid?.() === 0) return 'root';
  if (onPath('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore', timeout: 10_000 }).status === 0) return 'sudo';
  return 'tell';
}

function install(plan, how) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => {
    const argv = how === 'sudo' ? ['sudo', '-n', '--preserve-env=DEBIAN_FRONTEND', 'apt-get', ...args] : ['apt-get', ...args];
    const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (r.status !== 0) {
      process.stderr.write(`phigate tests: \`${argv.join(' ')}\` failed (exit ${r.status ?? r.signal})\n`);
      process.exit(1);
    }
  };
  run(['update', '-qq']);
  run(['install', '-y', '-qq', '--no-install-recommends', ...plan.packages]);
}

function main(argv) {
  const only = argv[0] === '--check' ? argv.slice(1) : undefined;
  if (only?.length === 0) {
    const plan = installPlan(PREREQS.filter((p) => !isPresent(p)), 'tell');
    process.stderr.write(planMessage(plan));
    return plan.action === 'none' ? 0 : 1;
  }
  if (only) {
    const unknown = only.filter((n) => findPrereqs(PREREQS, [n]).length === 0);
    if (unknown.length > 0) {
      process.stderr.write(`test-prereqs: unknown tool ${unknown.join(', ')} (known: ${PREREQS.map((p) => p.name).join(', ')})\n`);
      return 2;
    }
    const missing = findPrereqs(PREREQS, only).filter((p) => !isPresent(p));
    for (const p of missing) process.stderr.write(toolMessage(p) + '\n');
    return missing.length === 0 ? 0 : 1;
  }
  const missing = PREREQS.filter((p) => !isPresent(p));
  const how = missing.length === 0 ? 'tell' : installer();
  const plan = installPlan(missing, how);
  if (plan.action === 'none') return 0;
  process.stderr.write(planMessage(plan));
  if (plan.action !== 'install') return 1;
  install(plan, how);
  const still = PREREQS.filter((p) => !isPresent(p));
  if (still.length > 0) {
    process.stderr.write(`phigate tests: still missing after apt-get: ${still.map((p) => `${p.name} (${p.package})`).join(', ')}\n`);
    return 1;
  }
  process.stderr.write(`phigate tests: installed ${plan.packages.join(' ')}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exit(main(process.argv.slice(2)));
