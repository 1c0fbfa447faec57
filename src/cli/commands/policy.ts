// `phigate policy check FILE`: validates a policy file without starting a server.
import { Command } from 'commander';
import { resolve } from 'node:path';
import { loadPolicyFile } from '../../policy/file.js';
import { PolicyFileError } from '../../policy/errors.js';
import { policyVersion } from '../../policy/version.js';
import { ExitCode, PhigateError } from '../errors.js';

export function policyCommand(): Command {
  const policy = new Command('policy').description('validate and inspect policy files');
  policy
    .command('check')
    .description('validate a policy file; prints its version')
    .argument('<file>', 'policy file (YAML)')
    .option('--json', 'print the result as JSON')
    .action((file: string, opts: { json?: boolean }) => {
      try {
        const p = loadPolicyFile(resolve(file));
        const result = {
          file,
          valid: true,
          version: policyVersion(p.source),
          connections: [...p.connections.keys()],
          issuers: p.issuers.map((i) => i.issuer),
          rules: p.rules.length,
          default: p.default,
        };
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(result)}\n`);
          return;
        }
        process.stdout.write(
          `${file}: valid\n  version     ${result.version}\n  connections ${result.connections.join(', ')}\n` +
            `  issuers     ${result.issuers.join(', ') || '(none)'}\n  rules       ${result.rules} (default: ${result.default})\n`,
        );
      } catch (err) {
        if (err instanceof PolicyFileError) throw new PhigateError(err.message, ExitCode.Error);
        throw err;
      }
    });
  return policy;
}
