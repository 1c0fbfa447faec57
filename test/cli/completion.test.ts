// Shell completions: the scripts cover every command and flag of the CLI, load in bash, zsh and fish
// without errors, complete a subcommand at a real prompt (tmux) or through fish's completion engine,
// and fill in connection names and pending approval ids from the gateway (nothing when logged out).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { completionScript, describeProgram, SHELLS } from '../../src/cli/commands/completion.js';
import { BIN } from '../support/proc.js';
import { Tmux } from '../support/tmux.js';
import { expectTools } from '../support/expect-tools.js';
import { startInProcessGateway, type InProcessGateway } from '../approvals/gateway.js';

const ROOT = dirname(dirname(BIN));
// A missing shell is a failure naming its package (its tests are skipped then), never a silent skip.
const available = Object.fromEntries(['bash', 'zsh', 'fish', 'tmux'].map((s) => [s, expectTools(s)]));

// A `phigate` on PATH, as an installed CLI would be: the scripts call it for dynamic values.
const shimDir = mkdtempSync(join(tmpdir(), 'phigate-shim-'));
writeFileSync(join(shimDir, 'phigate'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`);
chmodSync(join(shimDir, 'phigate'), 0o755);
const home = mkdtempSync(join(tmpdir(), 'phigate-home-'));
const ENV: NodeJS.ProcessEnv = {
  ...process.env, PATH: `${shimDir}:${process.env['PATH'] ?? ''}`, PHIGATE_HOME: home, HOME: home,
  PHIGATE_TOKEN: '', PHIGATE_SERVER: 'http://127.0.0.1:9', NO_COLOR: '1',
};

function sh(file: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(file, args, { env: { ...ENV, ...env }, encoding: 'utf8', timeout: 30_000, cwd: home });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** As sh, without blocking this process: the in-process gateway below must keep answering. */
function shAsync(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(file, args, { env: { ...ENV, ...env }, cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Every command path and every flag the program has (what the scripts must cover). */
function everything(program: Command): { paths: string[]; flags: Map<string, string[]> } {
  const paths: string[] = [];
  const flags = new Map<string, string[]>();
  const walk = (cmd: Command, path: string): void => {
    if (path) paths.push(path);
    flags.set(path, cmd.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f))));
    for (const c of cmd.commands) if (!(c as unknown as { _hidden?: boolean })._hidden) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(program, '');
  return { paths, flags };
}

describe('completion scripts cover the CLI', () => {
  it('name every command, subcommand and flag, for every shell', () => {
    const program = buildProgram();
    const { paths, flags } = everything(program);
    expect(paths).toEqual(expect.arrayContaining(['connect', 'exec', 'approve', 'policy check', 'audit search', 'completion']));
    for (const shell of SHELLS) {
      const script = completionScript(shell, program);
      for (const p of paths) {
        const name = p.split(' ').at(-1)!;
        expect(script, `${shell}: command ${p}`).toContain(name);
      }
      for (const [path, fl] of flags) {
        for (const f of fl) expect(script, `${shell}: ${path || 'phigate'} ${f}`).toContain(`${f}`);
      }
    }
    const specs = describeProgram(program);
    expect(specs.find((s) => s.path === 'connect')?.args[0]?.kind).toBe('connection');
    expect(specs.find((s) => s.path === 'approve')?.args[0]?.kind).toBe('approval');
    expect(specs.find((s) => s.path === 'exec')?.options.find((o) => o.flags.includes('--connection'))?.value).toBe('connection');
    expect(specs.find((s) => s.path === 'server')?.options.find((o) => o.flags.includes('--log-format'))?.value).toBe('choices:text json');
    expect(specs.some((s) => s.subcommands.some((c) => c.name === '__complete'))).toBe(false);
  });

  it('`phigate completion SHELL` prints the same script; a bad shell is a usage error', () => {
    for (const shell of SHELLS) {
      // The same HOME as this process: some flag descriptions name default paths under it.
      const r = sh(process.execPath, [BIN, 'completion', shell], { HOME: process.env['HOME'], XDG_DATA_HOME: process.env['XDG_DATA_HOME'] });
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(completionScript(shell, buildProgram()));
    }
    const bad = sh(process.execPath, [BIN, 'completion', 'tcsh']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/bash, zsh, fish/);
  });

  it('completions/ holds loaders for the three shells that run `phigate completion`', () => {
    expect(readFileSync(join(ROOT, 'completions', 'phigate.bash'), 'utf8')).toContain('phigate completion bash');
    expect(readFileSync(join(ROOT, 'completions', '_phigate'), 'utf8')).toMatch(/^#compdef phigate\n[\s\S]*phigate completion zsh/);
    expect(readFileSync(join(ROOT, 'completions', 'phigate.fish'), 'utf8')).toContain('phigate completion fish');
  });
});

describe.skipIf(!available['bash'])('bash', () => {
  it('loads without errors (the script and completions/phigate.bash) and completes subcommands, flags and choices', () => {
    const load = sh('bash', ['--norc', '--noprofile', '-c', 'eval "$(phigate completion bash)" && complete -p phigate && source "$1" && complete -p phigate', 'bash', join(ROOT, 'completions', 'phigate.bash')]);
    expect(load.stderr).toBe('');
    expect(load.status).toBe(0);
    expect(load.stdout).toContain('complete -F _phigate phigate');
    // Drive the completion function exactly as bash does on TAB (COMP_LINE / COMP_POINT).
    const probe = `eval "$(phigate completion bash)"
t() { COMP_LINE="$1"; COMP_POINT=\${#COMP_LINE}; _phigate; echo "[\${COMPREPLY[*]}]"; }
t "phigate pol"; t "phigate policy te"; t "phigate connect --re"; t "phigate server --log-format j"; t "phigate audit search --decision den"; t "phigate connect "`;
    const r = sh('bash', ['--norc', '--noprofile', '-c', probe]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['[policy]', '[test]', '[--reason]', '[json]', '[denied]', '[]']);
  });
});

describe.skipIf(!available['zsh'])('zsh', () => {
  it('loads without errors, from the script and from $fpath (completions/_phigate)', () => {
    const dump = join(home, 'zcompdump');
    const load = sh('zsh', ['-f', '-c', `autoload -U compinit && compinit -u -d ${dump} && source <(phigate completion zsh) && print -r -- $_comps[phigate]`]);
    expect(load.stderr).toBe('');
    expect(load.status).toBe(0);
    expect(load.stdout.trim()).toBe('_phigate');
    const fromFpath = sh('zsh', ['-f', '-c', `fpath=(${join(ROOT, 'completions')} $fpath) && autoload -U compinit && compinit -u -d ${dump}2 && print -r -- $_comps[phigate]`]);
    expect(fromFpath.stderr).toBe('');
    expect(fromFpath.stdout.trim()).toBe('_phigate');
  });
});

describe.skipIf(!available['fish'])('fish', () => {
  it('loads without errors (the script and completions/phigate.fish) and completes through fish\'s own engine', () => {
    const r = sh('fish', ['--no-config', '-c', `phigate completion fish | source; and source ${join(ROOT, 'completions', 'phigate.fish')}; and complete -C "phigate pol"; and complete -C "phigate policy te"; and complete -C "phigate server --log-format j"; and complete -C "phigate connect "`]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^policy\tvalidate and inspect policy files$/);
    expect(lines[1]).toMatch(/^test\t/);
    expect(lines[2]).toBe('json');
    expect(lines).toHaveLength(3); // not logged in: no connection names, and no error either
  });
});

/** A private tmux server for the interactive prompts. */
const term = new Tmux('completion');
const tmux = (...args: string[]): string => term.run(...args);
const waitForScreen = (session: string, re: RegExp, timeoutMs = 30_000): Promise<string> => term.waitFor(session, re, { timeoutMs });

describe.skipIf(!available['tmux'] || !available['bash'] || !available['zsh'])('at a real prompt (tmux)', () => {
  afterAll(() => term.kill());

  it('TAB completes a subcommand in interactive bash and zsh, with the files in completions/', async () => {
    const zdot = mkdtempSync(join(tmpdir(), 'phigate-zdot-'));
    // PATH goes in the rc files: a shell started by tmux may not keep the one given with -e.
    const path = `export PATH=${JSON.stringify(ENV['PATH'])}\n`;
    writeFileSync(join(zdot, '.zshrc'), `${path}fpath=(${join(ROOT, 'completions')} $fpath)\nautoload -U compinit && compinit -u -d ${join(zdot, 'dump')}\nPS1='zsh> '\n`);
    const bashrc = join(zdot, 'bashrc');
    writeFileSync(bashrc, `${path}source ${join(ROOT, 'completions', 'phigate.bash')}\nPS1='bash> '\n`);
    const env = ['HOME', 'PHIGATE_HOME', 'PHIGATE_SERVER'].flatMap((k) => ['-e', `${k}=${ENV[k] ?? ''}`]);
    tmux('new-session', '-d', '-s', 'b', '-x', '120', '-y', '20', ...env, `bash --noprofile --rcfile ${bashrc} -i`);
    tmux('new-session', '-d', '-s', 'z', '-x', '120', '-y', '20', ...env, '-e', `ZDOTDIR=${zdot}`, 'zsh -i');
    // capture-pane drops trailing blanks: "bash> " reads "bash>".
    await waitForScreen('b', /^bash>$/m);
    await waitForScreen('z', /^zsh>$/m);
    tmux('send-keys', '-t', 'b', 'phigate pol', 'Tab');
    tmux('send-keys', '-t', 'z', 'phigate pol', 'Tab');
    await waitForScreen('b', /^bash> phigate policy$/m);
    await waitForScreen('z', /^zsh> phigate policy$/m);
    // A second level, and zsh's descriptions of the choices.
    tmux('send-keys', '-t', 'b', 'ch', 'Tab');
    tmux('send-keys', '-t', 'z', 'Tab');
    await waitForScreen('b', /^bash> phigate policy check$/m);
    const z = await waitForScreen('z', /check +-- validate a policy file/);
    expect(z).toMatch(/apply +-- validate FILE/);
  });
});

describe('gateway values: connection names and pending approval ids', () => {
  let g: InProcessGateway;
  beforeAll(async () => {
    g = await startInProcessGateway();
  });
  afterAll(async () => g?.close());

  it('`phigate __complete` lists them for the caller and prints nothing (exit 0) when not logged in', async () => {
    const held = g.request();
    const bob = await g.idp.mint('bob');
    const alice = await g.idp.mint('alice');
    const conn = await shAsync(process.execPath, [BIN, '__complete', 'connection', '--server', g.url], { PHIGATE_TOKEN: alice, PHIGATE_DEBUG: '1' });
    expect(conn.stderr).toBe('');
    expect(conn.stdout.split('\n')).toEqual(expect.arrayContaining(['ehr', 'ehr-md5']));
    const ids = await shAsync(process.execPath, [BIN, '__complete', 'approval', '--server', g.url], { PHIGATE_TOKEN: bob });
    expect(ids.stdout.split('\n')).toContain(held.id);
    const anon = await shAsync(process.execPath, [BIN, '__complete', 'connection', '--server', g.url]);
    expect(anon).toMatchObject({ status: 0, stdout: '', stderr: '' });
    const down = await shAsync(process.execPath, [BIN, '__complete', 'approval', '--server', 'http://127.0.0.1:9'], { PHIGATE_TOKEN: bob });
    expect(down).toMatchObject({ status: 0, stdout: '', stderr: '' });
    held.withdraw('test over');
  });

  it.skipIf(!available['fish'])('reach the shell: fish completes `phigate connect ` and `phigate approve ` from the gateway', async () => {
    const held = g.request();
    const complete = async (who: string, line: string): Promise<string[]> => {
      const r = await shAsync('fish', ['--no-config', '-c', `phigate completion fish | source; and complete -C "${line}"`],
        { PHIGATE_TOKEN: await g.idp.mint(who), PHIGATE_SERVER: g.url });
      expect(r.stderr).toBe('');
      return r.stdout.split('\n');
    };
    expect(await complete('alice', 'phigate connect ')).toContain('ehr');
    // --server typed on the line is passed on to the lookup
    expect(await complete('bob', `phigate approve --server ${g.url} `)).toContain(held.id);
    held.withdraw('test over');
  });
});
