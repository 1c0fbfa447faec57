// CLI entry: builds the commander program and maps typed errors to SPEC.md exit codes.
import { Command, CommanderError } from 'commander';
import { ExitCode, PhigateError } from './errors.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('phigate')
    .description('Identity-aware gateway for PostgreSQL databases holding PHI')
    .version('0.1.0')
    .exitOverride();
  try {
    await program.parseAsync(argv);
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return ExitCode.Ok;
      return ExitCode.Usage;
    }
    if (err instanceof PhigateError) {
      process.stderr.write(`phigate: ${err.message}\n`);
      if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
