// CLI entry: builds the commander program and maps typed errors to the exit codes of docs/engineer.md.
import { Command, CommanderError } from 'commander';
import { ExitCode, PhigateError } from './errors.js';
import { serverCommand } from './commands/server.js';
import { connectCommand } from './commands/connect.js';
import { execCommand } from './commands/exec.js';
import { policyCommand } from './commands/policy.js';
import { loginCommand } from './commands/login.js';
import { logoutCommand } from './commands/logout.js';
import { whoamiCommand } from './commands/whoami.js';
import { connectionsCommand } from './commands/connections.js';
import { demoCommand } from './commands/demo.js';
import { approvalsCommand } from './commands/approvals.js';
import { approveCommand } from './commands/approve.js';
import { paint } from '../ui/style.js';
import { auditCommand } from './commands/audit.js';
import { sessionsCommand } from './commands/sessions.js';
import { replayCommand } from './commands/replay.js';
import { completeValuesCommand, completionCommand } from './commands/completion.js';
import { doctorCommand } from './commands/doctor.js';

export { VERSION } from '../version.js';
import { VERSION } from '../version.js';

export function buildProgram(): Command {
  const program = new Command('phigate')
    .description('Identity-aware gateway for PostgreSQL databases holding PHI')
    .version(VERSION)
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .exitOverride();
  for (const cmd of [serverCommand(), doctorCommand(), demoCommand(), loginCommand(), logoutCommand(), whoamiCommand(), connectionsCommand(), connectCommand(), execCommand(), policyCommand(), approvalsCommand(), approveCommand(), sessionsCommand(), replayCommand(), auditCommand(), completionCommand()]) {
    program.addCommand(cmd);
  }
  program.addCommand(completeValuesCommand(), { hidden: true });
  for (const cmd of allCommands(program)) {
    cmd.exitOverride();
  }
  return program;
}

/** Every command below `root`, so that settings such as exitOverride reach nested subcommands. */
function allCommands(root: Command): Command[] {
  return root.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/**
 * `phigate help --help` (or `help -h`, `help help`) asks for help about help: commander would look
 * for a command named `--help` and fail; the answer is the program's help.
 */
function helpAboutHelp(argv: string[]): string[] {
  const [node = 'node', script = 'phigate', first, ...rest] = argv;
  const aboutHelp = first === 'help' && rest.length > 0 && rest.every((a) => a === '--help' || a === '-h' || a === 'help');
  return aboutHelp ? [node, script, '--help'] : argv;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(helpAboutHelp(argv));
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the problem; help and version exit with 0
      return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    if (err instanceof PhigateError) {
      const c = paint(process.stderr);
      process.stderr.write(`${c.red('phigate:')} ${err.message}\n`);
      if (err.hint) process.stderr.write(`${c.dim(`hint: ${err.hint}`)}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
