// `phigate exec -- CMD`: runs CMD with PG* variables pointing at a private tunnelled port, forwards
// signals to it and exits with its exit code. The child never sees a database credential.
import { Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { resolveContext, type GlobalOptions } from '../context.js';
import { withGatewayOptions } from '../options.js';
import { ExitCode, PhigateError } from '../errors.js';
import { preflight, startWait } from '../../tunnel/client.js';
import { ensureAccess } from '../../tunnel/access.js';
import { startLocalListener } from '../../tunnel/listener.js';
import { progress, say as uiSay, type Progress } from '../../ui/progress.js';
import { CONNECTIONS_PATH, type ConnectionInfo } from '../../tunnel/protocol.js';
import { refusalError, unreachableError } from '../../tunnel/refusal.js';

interface ExecOptions extends GlobalOptions {
  connection?: string;
  name?: string;
  reason?: string;
  duration?: string;
}

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

export function execCommand(): Command {
  return withGatewayOptions(
    new Command('exec')
      .description('run COMMAND with PGHOST/PGPORT/DATABASE_URL pointing at a private tunnelled port')
      .option('--connection <name>', 'connection to use (default: the only one you may use)')
      .option('--name <agent>', 'label for the sessions, e.g. the agent name')
      .option('--duration <dur>', 'how long to request access for, when the connection needs approval (e.g. 30m)')
      .option('--reason <text>', 'why this command needs the database (recorded)')
      .argument('<command...>', 'command and arguments, after --')
      .passThroughOptions(),
  ).action(async (command: string[], opts: ExecOptions) => {
    process.exitCode = await runExec(command, opts);
  });
}

async function pickConnection(serverUrl: string, token: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${serverUrl}${CONNECTIONS_PATH}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw unreachableError(serverUrl, err);
  }
  const body = await res.text();
  if (!res.ok) throw refusalError(res.status, body);
  const list = (JSON.parse(body) as { connections: ConnectionInfo[] }).connections;
  if (list.length === 1) return list[0]!.name;
  if (list.length === 0) throw new PhigateError('you may not use any connection on this gateway', ExitCode.Denied);
  throw new PhigateError(`--connection is required: you may use ${list.map((c) => c.name).join(', ')}`, ExitCode.Usage);
}

async function runExec(command: string[], opts: ExecOptions): Promise<number> {
  const ctx = resolveContext(opts);
  const say = (line: string): void => uiSay(line);
  // Once the child runs it may draw on the same terminal (an agent's TUI): animate only when its output is not one.
  const wait = (text: string): Progress => (process.stdout.isTTY ? startWait({ say }, text) : progress(text));
  const connection = opts.connection ?? (await pickConnection(ctx.serverUrl, await ctx.token()));
  const info = await preflight({ serverUrl: ctx.serverUrl, connection, token: ctx.token });
  const label = opts.name ?? 'exec';
  await ensureAccess(info, { serverUrl: ctx.serverUrl, connection, token: ctx.token, reason: opts.reason, duration: opts.duration, label, say, wait: (t) => progress(t) });
  const listener = await startLocalListener({
    serverUrl: ctx.serverUrl, connection, token: ctx.token, label, reason: opts.reason, say, wait, port: 0,
  });
  const db = info.connection.database || connection;
  const user = info.identity.name;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PGHOST: listener.host,
    PGPORT: String(listener.port),
    PGUSER: user,
    PGDATABASE: db,
    PGSSLMODE: 'disable',
    DATABASE_URL: `postgres://${encodeURIComponent(user)}@${listener.host}:${listener.port}/${encodeURIComponent(db)}?sslmode=disable`,
    PHIGATE_SESSION_LABEL: label,
  };
  delete env['PGPASSWORD'];
  const [file, ...args] = command;
  if (!file) throw new PhigateError('no command given', ExitCode.Usage, 'usage: phigate exec [options] -- COMMAND [ARGS...]');
  // Handlers go in before the spawn: a signal that arrives while the child is starting is held and
  // delivered once it exists, instead of killing us and orphaning it.
  const running: { child?: ChildProcess } = {};
  const pending: NodeJS.Signals[] = [];
  const forward = (sig: NodeJS.Signals) => (): void => {
    const child = running.child;
    if (!child) pending.push(sig);
    else if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of FORWARDED_SIGNALS) handlers.set(sig, forward(sig));
  // Ctrl-C at a terminal already reaches the child (same process group); forward only when not interactive.
  handlers.set('SIGINT', process.stdin.isTTY ? () => {} : forward('SIGINT'));
  for (const [sig, h] of handlers) process.on(sig, h);
  const started = spawn(file, args, { stdio: 'inherit', env });
  running.child = started;
  for (const sig of pending) started.kill(sig);
  try {
    return await new Promise<number>((resolveExit, reject) => {
      started.once('error', (err: NodeJS.ErrnoException) => {
        reject(new PhigateError(
          err.code === 'ENOENT' ? `command not found: ${file}` : `cannot run ${file}: ${err.message}`,
          err.code === 'ENOENT' ? 127 : ExitCode.Error,
        ));
      });
      started.once('exit', (code, signal) => {
        if (code !== null) resolveExit(code);
        else resolveExit(128 + ((signal && osConstants.signals[signal]) || 1));
      });
    });
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
    await listener.close();
  }
}
