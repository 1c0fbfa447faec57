// README.md's commands are pasteable as written: its shell blocks have no comments (zsh does not take
// them at a prompt), call the CLI as `npx phigate` (a fresh checkout has no `phigate` on PATH), and
// every `npx phigate` command there or in its text names subcommands, flags and arguments the CLI
// has; `npm run` names scripts package.json has; and there is a login line for each dev identity
// with the dev issuer's client id and secret. So README cannot drift from the CLI unnoticed.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { DEV_IDENTITIES, devClientSecret } from '../../src/auth/dev-issuer.js';

const ROOT = join(import.meta.dirname, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** The ```sh blocks, each a list of lines. */
const shellBlocks = [...README.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```$/gm)].map((m) => m[1]!.split('\n').filter((l) => l.trim() !== ''));
/** Commands in the text: `npx phigate ...` and `phigate ...` code spans outside the blocks. */
const inlineCommands = [...README.replace(/^```[\s\S]*?^```$/gm, '').matchAll(/`((?:npx )?phigate [^`]+)`/g)].map((m) => m[1]!);

/** Words as sh splits them (quotes removed), for the simple commands README shows. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** Leading VAR=value words, then the command. */
function splitEnv(ws: string[]): { env: Record<string, string>; argv: string[] } {
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < ws.length && /^[A-Z_][A-Z0-9_]*=/.test(ws[i]!); i++) env[ws[i]!.split('=')[0]!] = ws[i]!.slice(ws[i]!.indexOf('=') + 1);
  return { env, argv: ws.slice(i) };
}

/** What is wrong with `phigate ARGS` for this CLI: an unknown subcommand or flag; a missing argument when it is to be run. */
function cliProblems(program: Command, args: string[], runnable = true): string[] {
  let cmd = program;
  let i = 0;
  for (; i < args.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === args[i] || c.aliases().includes(args[i]!));
    if (!sub) break;
    cmd = sub;
  }
  const path = ['phigate', ...args.slice(0, i)].join(' ');
  if (cmd === program) return [`no such subcommand: phigate ${args[0] ?? ''}`];
  if (runnable && cmd.commands.length > 0 && i === args.length) return [`${path} needs a subcommand`];
  const problems: string[] = [];
  let positional = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional += args.length - i - 1;
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional++;
      continue;
    }
    const flag = a.split('=')[0]!;
    const opt = cmd.options.find((o) => o.long === flag || o.short === flag || o.negate && o.long === flag);
    if (!opt) {
      if (flag !== '--help' && flag !== '-h') problems.push(`${path}: no flag ${flag}`);
      continue;
    }
    if ((opt.required || opt.optional) && !a.includes('=')) i++;
  }
  const required = cmd.registeredArguments.filter((x) => x.required).length;
  if (runnable && positional < required) problems.push(`${path}: needs ${required} argument(s), README gives ${positional}`);
  return problems;
}

describe('README.md', () => {
  it('has shell blocks and commands in its text to check', () => {
    expect(shellBlocks.length).toBeGreaterThanOrEqual(3);
    expect(inlineCommands.length).toBeGreaterThanOrEqual(2);
  });

  it('shell blocks paste into bash and zsh: no comments, and phigate always as `npx phigate`', () => {
    for (const line of shellBlocks.flat()) {
      expect(line, 'a comment zsh would run as a command').not.toMatch(/(^|\s)#/);
      const { argv } = splitEnv(words(line));
      expect(argv[0], `${line}: not on PATH in a fresh checkout, use npx phigate`).not.toBe('phigate');
      expect(['npm', 'npx'], line).toContain(argv[0]);
    }
  });

  it('every phigate command, in the blocks and in the text, names subcommands, flags and arguments the CLI has', () => {
    const program = buildProgram();
    // `npx phigate ...` is meant to be run as written; a bare `phigate exec` in the text names a command.
    const commands = [...shellBlocks.flat(), ...inlineCommands].map((l) => splitEnv(words(l)).argv).filter((a) => a.includes('phigate'));
    expect(commands.length).toBeGreaterThanOrEqual(20);
    const problems = commands.flatMap((argv) => (argv[0] === 'npx' ? cliProblems(program, argv.slice(2)) : cliProblems(program, argv.slice(1), false)));
    expect(problems).toEqual([]);
    // the check itself catches what it is for
    expect(cliProblems(program, ['conect', 'ehr'])).toEqual(['no such subcommand: phigate conect']);
    expect(cliProblems(program, ['approve', '--profle', 'bob'])).toEqual(['phigate approve: no flag --profle']);
    expect(cliProblems(program, ['connect', '--profile', 'alice'])).toEqual(['phigate connect: needs 1 argument(s), README gives 0']);
    expect(cliProblems(program, ['audit'])).toEqual(['phigate audit needs a subcommand']);
  });

  it('every `npm run` script exists', () => {
    const runs = shellBlocks.flat().map((l) => words(l)).filter((w) => w[0] === 'npm' && w[1] === 'run');
    for (const w of [...runs, ...[...README.matchAll(/`npm run ([\w:-]+)/g)].map((m) => ['npm', 'run', m[1]!])]) {
      expect(Object.keys(SCRIPTS), w.join(' ')).toContain(w[2]);
    }
  });

  it('logs in as each dev identity with the dev issuer\'s client id and secret, one line each, the way the demo prints it', () => {
    const lines = shellBlocks.flat();
    for (const { name } of DEV_IDENTITIES) {
      const line = `PHIGATE_CLIENT_ID=dev-${name} PHIGATE_CLIENT_SECRET=${devClientSecret(name)} npx phigate login --client-credentials --profile ${name}`;
      expect(lines).toContain(line);
    }
    // and acts as them with --profile
    for (const name of ['alice', 'bob', 'carol', 'agent']) expect(lines.some((l) => l.includes(`--profile ${name}`) && !l.includes(' login '))).toBe(true);
  });
});
