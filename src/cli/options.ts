// Options shared by every command that talks to a gateway (docs/engineer.md "Environment").
import { Option, type Command } from 'commander';

export function withGatewayOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <url>', 'gateway URL').env('PHIGATE_SERVER'))
    .addOption(new Option('--profile <name>', 'configuration profile').env('PHIGATE_PROFILE'))
    .addOption(new Option('--token-file <file>', 'read the bearer token from FILE (default: $PHIGATE_TOKEN)'));
}

/** Parses HOST:PORT, [v6]:PORT or PORT. */
export function parseHostPort(s: string, defaultHost = '127.0.0.1'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s) ?? /^()()(\d+)$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`expected HOST:PORT, got "${s}"`);
  }
  return { host: m[1] || m[2] || defaultHost, port };
}
