// scripts/test-prereqs.mjs, the one list of the system tools the tests need: which packages a set of
// missing tools comes to, the command a user without root is told (and one with root gets run), the
// tests' one-line messages, and that `npm test` and .ci/run both go through it before building.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findPrereqs, installPlan, planMessage, PREREQS, toolMessage, type Prereq } from '../../scripts/test-prereqs.mjs';
import { PREREQS_SCRIPT } from '../support/prereqs.js';

const ROOT = join(import.meta.dirname, '..', '..');
const named = (...names: string[]): Prereq[] => findPrereqs(PREREQS, names);

describe('the install plan', () => {
  it('is nothing when nothing is missing', () => {
    expect(installPlan([], 'tell')).toMatchObject({ action: 'none', packages: [] });
    expect(planMessage(installPlan([], 'root'))).toBe('');
  });

  it('tells a user without root the exact apt-get command, each package once, and which tests need it', () => {
    const plan = installPlan(named('zsh', 'fish', 'psycopg', 'dbus-run-session', 'gnome-keyring-daemon'), 'tell');
    expect(plan.action).toBe('tell');
    expect(plan.packages).toEqual(['dbus', 'fish', 'gnome-keyring', 'python3-psycopg', 'zsh']);
    const msg = planMessage(plan);
    expect(msg).toContain('  sudo apt-get update && sudo apt-get install -y --no-install-recommends dbus fish gnome-keyring python3-psycopg zsh\n');
    expect(msg).toMatch(/^phigate tests: 5 system tools are missing:\n/);
    expect(msg).toMatch(/^ {2}psycopg +Debian package python3-psycopg \(the psycopg 3 client tests\)$/m);
    expect(msg).toMatch(/^install them, then run the tests again:$/m);
  });

  it('installs as root (no sudo) or with passwordless sudo, and says so', () => {
    const two = [...named('jdk'), { ...named('jdk')[0]!, name: 'jshell', commands: ['jshell'] }];
    const root = installPlan(two, 'root');
    expect(root).toMatchObject({ action: 'install', packages: ['default-jdk-headless'] });
    expect(root.commands).toEqual(['apt-get update', 'apt-get install -y --no-install-recommends default-jdk-headless']);
    expect(planMessage(root)).toMatch(/^installing default-jdk-headless with apt-get:$/m);
    expect(installPlan(two, 'sudo').commands[1]).toBe('sudo apt-get install -y --no-install-recommends default-jdk-headless');
  });

  it('without apt-get, names the Debian packages to find equivalents of', () => {
    const msg = planMessage(installPlan(named('tmux'), 'no-apt'));
    expect(msg).toContain('tmux  Debian package tmux');
    expect(msg).toMatch(/no apt-get: install the equivalents/);
  });
});

describe('the list', () => {
  it('finds an entry by the command a test spawns, not only by its name', () => {
    expect(named('java').map((p) => p.package)).toEqual(['default-jdk-headless']);
    expect(named('/usr/bin/python3', 'pgbench').map((p) => p.package)).toEqual(['postgresql', 'python3-psycopg']);
    expect(named('docker')).toEqual([]);
  });

  it('gives every entry a package, the tests that need it and exactly one kind of check', () => {
    for (const p of PREREQS) {
      expect(p.package, p.name).toMatch(/^[a-z0-9][a-z0-9.+-]+$/);
      expect(p.for, p.name).not.toBe('');
      expect([p.commands, p.module, p.file].filter(Boolean), p.name).toHaveLength(1);
    }
  });

  it('a test\'s message names what is missing and the package', () => {
    expect(toolMessage(named('psycopg')[0]!)).toMatch(/^the Python module psycopg \(for \/usr\/bin\/python3\) is not installed, needed for the psycopg 3 client tests: install the Debian package python3-psycopg \(sudo apt-get install -y --no-install-recommends python3-psycopg\)/);
    expect(toolMessage(named('pgjdbc')[0]!)).toMatch(/^\/usr\/share\/java\/postgresql\.jar is not installed, .*libpostgresql-jdbc-java/);
  });
});

describe('the checker on this machine', () => {
  const check = (args: string[], missing: string) =>
    spawnSync(process.execPath, [PREREQS_SCRIPT, '--check', ...args], { encoding: 'utf8', env: { ...process.env, PHIGATE_PREREQS_MISSING: missing } });

  it('reports a tool as missing, naming its package', () => {
    const one = check(['zsh', 'psql'], 'zsh');
    expect(one.status).toBe(1);
    expect(one.stderr).toMatch(/^zsh is not installed, needed for shell completion tests: install the Debian package zsh /);
    expect(one.stderr).not.toMatch(/psql/);
    const all = check([], 'fish,psycopg');
    expect(all.status).toBe(1);
    expect(all.stderr).toContain('sudo apt-get install -y --no-install-recommends fish python3-psycopg');
    expect(check(['no-such-tool'], '').status).toBe(2);
  });
});

describe('one source for npm test and CI', () => {
  it('npm test checks the prerequisites before building, and .ci/run installs through the same script', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['pretest']).toMatch(/^node scripts\/test-prereqs\.mjs && npm run build$/);
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    expect(ci).toMatch(/^node scripts\/test-prereqs\.mjs$/m);
    expect(ci).not.toMatch(/apt-get install/);
    expect(ci.trimEnd().split('\n').at(-1)).toBe('npm test');
  });
});
