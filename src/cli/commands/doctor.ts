// `phigate doctor`: checks a server configuration against the live world before (or while) the
// gateway runs, with the same flags as `phigate server`, and says what is wrong and how to fix it.
// Exit 0 when nothing failed (warnings allowed), 1 otherwise.
import { errnoOf } from '../../common/errors.js';
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { paint } from '../../ui/style.js';
import { ExitCode, PhigateError } from '../errors.js';
import { parseHostPort } from '../options.js';
import { defaultDataDir, serverConfigOptions } from './server.js';
import { runDoctor } from '../doctor/checks.js';
import { doctorExitCode, doctorJson, doctorText } from '../doctor/report.js';

interface DoctorCliOptions {
  config: string;
  listen: string;
  dataDir?: string;
  store?: string;
  maskingKeyFile?: string;
  metricsListen?: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
  json?: boolean;
}

export function doctorCommand(): Command {
  const cmd = new Command('doctor')
    .description('check a server configuration against its identity providers, databases, store and files; say what is wrong and how to fix it');
  // The server's own flags, so that a working `phigate server ...` line becomes a doctor line as is.
  for (const o of serverConfigOptions()) cmd.addOption(o);
  return cmd
    .option('--token-file <file>', 'also verify this bearer token as the gateway would and show its identity and groups (never printed)')
    .option('--json', 'print one JSON document')
    .addHelpText('after', '\nExit status: 0 when no check failed (warnings allowed), 1 otherwise.')
    .action(async (opts: DoctorCliOptions) => runDoctorCommand(opts));
}

function hostPortOption(flag: string, value: string): { host: string; port: number } {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new PhigateError(`${flag}: ${(err as Error).message}`, ExitCode.Usage);
  }
}

async function runDoctorCommand(opts: DoctorCliOptions): Promise<void> {
  const listen = hostPortOption('--listen', opts.listen);
  const metricsListen = opts.metricsListen !== undefined ? hostPortOption('--metrics-listen', opts.metricsListen) : undefined;
  let token: string | undefined;
  if (opts.tokenFile !== undefined) {
    try {
      token = readFileSync(opts.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new PhigateError(`cannot read --token-file: ${errnoOf(err) ?? (err as Error).message}`, ExitCode.Usage);
    }
  }
  const config = resolve(opts.config);
  const results = await runDoctor({
    config, listen, dataDir: resolve(opts.dataDir ?? defaultDataDir()),
    ...(metricsListen ? { metricsListen } : {}),
    ...(opts.store ? { store: opts.store } : {}),
    ...(opts.maskingKeyFile ? { maskingKeyFile: resolve(opts.maskingKeyFile) } : {}),
    ...(opts.tlsCert ? { tlsCert: opts.tlsCert } : {}),
    ...(opts.tlsKey ? { tlsKey: opts.tlsKey } : {}),
    ...(token !== undefined ? { token } : {}),
  });
  process.stdout.write(opts.json ? doctorJson(config, results) : doctorText(config, results, paint(process.stdout)));
  process.exitCode = doctorExitCode(results);
}
