// `phigate connect CONNECTION`: a loopback port any PostgreSQL client can use, tunnelled to the gateway.
import { Command } from 'commander';
import { resolveContext, type GlobalOptions } from '../context.js';
import { withGatewayOptions } from '../options.js';
import { ExitCode, PhigateError } from '../errors.js';
import { preflight } from '../../tunnel/client.js';
import { ensureAccess } from '../../tunnel/access.js';
import { startLocalListener } from '../../tunnel/listener.js';
import { progress, say as uiSay, type Progress } from '../../ui/progress.js';

interface ConnectOptions extends GlobalOptions {
  port?: string;
  reason?: string;
  duration?: string;
}

export function connectCommand(): Command {
  return withGatewayOptions(
    new Command('connect')
      .description('open a local port for CONNECTION; every client connection is tunnelled to the gateway')
      .argument('<connection>', 'connection name (see `phigate connections`)')
      .option('--port <n>', 'local port to listen on (default: a free one)')
      .option('--duration <dur>', 'how long to request access for, when the connection needs approval (e.g. 30m)')
      .option('--reason <text>', 'why you are connecting (recorded)'),
  ).action(async (connection: string, opts: ConnectOptions) => runConnect(connection, opts));
}

export function parsePort(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535) throw new PhigateError(`--port: expected 1-65535, got "${s}"`, ExitCode.Usage);
  return n;
}

async function runConnect(connection: string, opts: ConnectOptions): Promise<void> {
  const port = parsePort(opts.port);
  const ctx = resolveContext(opts);
  const say = (line: string): void => uiSay(line);
  const wait = (text: string): Progress => progress(text);
  const info = await preflight({ serverUrl: ctx.serverUrl, connection, token: ctx.token });
  await ensureAccess(info, { serverUrl: ctx.serverUrl, connection, token: ctx.token, reason: opts.reason, duration: opts.duration, say, wait });
  const listener = await startLocalListener({
    serverUrl: ctx.serverUrl, connection, token: ctx.token, reason: opts.reason, say, wait, port,
  });
  const db = info.connection.database || connection;
  const user = info.identity.name;
  process.stdout.write(
    `Connected to "${connection}" as ${user} (${info.identity.groups.join(', ') || 'no groups'}) via ${ctx.serverUrl}\n` +
      `Listening on ${listener.host}:${listener.port}. Use:\n` +
      `  psql "host=${listener.host} port=${listener.port} dbname=${db} user=${user} sslmode=disable"\n` +
      `Press Ctrl-C to close.\n`,
  );
  await new Promise<void>((resolveStop) => {
    const stop = (): void => {
      listener.close().then(resolveStop, resolveStop);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
