// `phigate server`: loads the policy file and runs the gateway until SIGINT/SIGTERM.
import { errnoOf, hintOf } from '../../common/errors.js';
import { Command, Option } from 'commander';
import { accessSync, chmodSync, constants, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadPolicyFile } from '../../policy/file.js';
import { PolicyFileError } from '../../policy/errors.js';
import { Gateway } from '../../server/gateway.js';
import { isLoopbackHost } from '../../server/loopback.js';
import { formatPublicKey } from '../../audit/keys.js';
import { PostgresApprovalStore } from '../../approvals/pg-store.js';
import { SharedDatabase, redactStoreUrl } from '../../store/shared-db.js';
import { createLogger } from '../../common/log.js';
import { readTokenKey } from '../../server/secrets.js';
import { ExitCode, PhigateError } from '../errors.js';
import { parseHostPort } from '../options.js';

export const DEFAULT_LISTEN = '127.0.0.1:7432';

/** Creates the data directory and checks this process may write there, before anything is written. */
function prepareDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    accessSync(dataDir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new PhigateError(`cannot start: the data directory ${dataDir} is not writable by this process: ${e.code ?? e.message}`,
      ExitCode.Error, e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? dataDirOwnerHint(dataDir)
        : '--data-dir must name a directory this process can create and write');
  }
}

function dataDirOwnerHint(dataDir: string): string {
  const uid = process.getuid?.();
  return `the data directory and its files must belong to the user the server runs as${uid === undefined ? '' : ` (uid ${uid})`}: ` +
    `chown -R ${uid ?? 'USER'} ${dataDir}; in a container mount a named volume, or in Kubernetes set fsGroup`;
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['XDG_DATA_HOME'] || join(homedir(), '.local', 'share'), 'phigate', 'server');
}

interface ServerOptions {
  config: string;
  listen: string;
  dataDir?: string;
  tlsCert?: string;
  tlsKey?: string;
  logFormat: 'text' | 'json';
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  logFile?: string;
  dev?: boolean;
  printPublicKey?: boolean;
  store?: string;
  maskingKeyFile?: string;
  metricsListen?: string;
}

/**
 * The flags that say where a server's things are (policy, address, data, TLS, store, keys, metrics):
 * one declaration for `phigate server` and `phigate doctor`, which checks that same configuration.
 */
export function serverConfigOptions(): Option[] {
  return [
    new Option('--config <file>', 'policy file (YAML)').env('PHIGATE_CONFIG').default('phigate.yaml'),
    new Option('--listen <host:port>', 'address to listen on').default(DEFAULT_LISTEN),
    new Option('--data-dir <dir>', `where evidence and state are kept (default: ${defaultDataDir()})`),
    new Option('--tls-cert <file>', 'PEM certificate for HTTPS/WSS'),
    new Option('--tls-key <file>', 'PEM private key for --tls-cert'),
    new Option('--store <url>', 'PostgreSQL that replicas share for approvals, grants, policy changes and evidence (postgres://user@host/db)').env('PHIGATE_STORE_URL'),
    new Option('--masking-key-file <file>', 'tokenization key (base64, mode 0600) shared by every replica').env('PHIGATE_MASKING_KEY_FILE'),
    new Option('--metrics-listen <host:port>', 'serve Prometheus /metrics without a token on this separate address (e.g. 0.0.0.0:9464 in a pod)').env('PHIGATE_METRICS_LISTEN'),
  ];
}

export function serverCommand(): Command {
  const cmd = new Command('server')
    .description('run the gateway: terminates PostgreSQL sessions from tunnels, decides and records them');
  for (const o of serverConfigOptions()) cmd.addOption(o);
  return cmd
    .option('--dev', 'development mode: run a built-in OpenID Provider with dev identities (loopback only)')
    .option('--print-public-key', 'print the audit checkpoint public key (PEM and fingerprint) for --data-dir and exit')
    .addOption(new Option('--log-format <format>', 'log line format').choices(['text', 'json']).default('text'))
    .addOption(new Option('--log-level <level>', 'least severe level logged').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addOption(new Option('--log-file <file>', 'append log lines to FILE (created mode 0600) instead of stderr').env('PHIGATE_LOG_FILE'))
    .action(async (opts: ServerOptions) => runServer(opts));
}

async function runServer(opts: ServerOptions): Promise<void> {
  // Everything the server creates (evidence, recordings, keys, state, its log) is for its own user
  // only, whatever umask it was started with: 0600 files, 0700 directories.
  process.umask(0o077);
  if (opts.printPublicKey) {
    // Auditors pin this key: `phigate audit verify --public-key FILE`.
    process.stdout.write(formatPublicKey(resolve(opts.dataDir ?? defaultDataDir())));
    return;
  }
  let listen: { host: string; port: number };
  try {
    listen = parseHostPort(opts.listen);
  } catch (err) {
    throw new PhigateError(`--listen: ${(err as Error).message}`, ExitCode.Usage);
  }
  if (opts.dev && !isLoopbackHost(listen.host)) {
    throw new PhigateError(`--dev refuses to listen on ${listen.host}: dev identities must never be reachable from the network`,
      ExitCode.Usage, 'use --listen 127.0.0.1:PORT');
  }
  let metricsListen: { host: string; port: number } | undefined;
  if (opts.metricsListen !== undefined) {
    try {
      metricsListen = parseHostPort(opts.metricsListen);
    } catch (err) {
      throw new PhigateError(`--metrics-listen: ${(err as Error).message}`, ExitCode.Usage);
    }
  }
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
    throw new PhigateError('--tls-cert and --tls-key go together', ExitCode.Usage);
  }
  let policy;
  try {
    policy = loadPolicyFile(resolve(opts.config));
  } catch (err) {
    if (err instanceof PolicyFileError) {
      throw new PhigateError(`invalid policy file: ${err.message}`, ExitCode.Error, 'check it with `phigate policy check FILE`');
    }
    throw err;
  }
  const dataDir = resolve(opts.dataDir ?? defaultDataDir());
  prepareDataDir(dataDir);
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (opts.tlsCert && opts.tlsKey) {
    try {
      tls = { cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey) };
    } catch (err) {
      throw new PhigateError(`cannot read TLS material: ${(err as Error).message}`);
    }
  }
  if (opts.store !== undefined && !/^postgres(ql)?:\/\//.test(opts.store)) {
    throw new PhigateError(`--store must be a postgres:// URL, not "${redactStoreUrl(opts.store)}"`, ExitCode.Usage,
      'e.g. --store postgres://phigate@db.internal/phigate (password in PGPASSWORD or ~/.pgpass)');
  }
  let maskingKey: Buffer | undefined;
  if (opts.maskingKeyFile) {
    try {
      maskingKey = readTokenKey(resolve(opts.maskingKeyFile));
    } catch (err) {
      throw new PhigateError(`cannot use --masking-key-file: ${(err as Error).message}`, ExitCode.Error);
    }
  }
  const log = createLogger({ format: opts.logFormat, level: opts.logLevel, ...(opts.logFile ? { write: logFileWriter(opts.logFile) } : {}) });
  let approvalStore: PostgresApprovalStore | undefined;
  let sharedDb: SharedDatabase | undefined;
  if (opts.store) {
    try {
      sharedDb = await SharedDatabase.open(opts.store, { log });
      approvalStore = await PostgresApprovalStore.open(sharedDb);
    } catch (err) {
      await sharedDb?.close();
      throw new PhigateError((err as Error).message, ExitCode.Error, 'check --store / PHIGATE_STORE_URL and that the database accepts this role');
    }
  }
  const devTtl = Number(process.env['PHIGATE_DEV_ACCESS_TOKEN_TTL'] ?? '') || undefined;
  let started: { url: string; metricsUrl?: string };
  let gateway: Gateway;
  try {
    gateway = new Gateway({
      policy, host: listen.host, port: listen.port, tls, log, dataDir, policyFile: resolve(opts.config),
      dev: opts.dev ? { stateDir: join(dataDir, 'dev-issuer'), accessTokenTtlSec: devTtl } : undefined,
      approvalStore,
      sharedDb,
      maskingKey,
      metricsListen,
    });
    started = await gateway.start();
  } catch (err) {
    await approvalStore?.close();
    await sharedDb?.close();
    const e = err as NodeJS.ErrnoException;
    const code = errnoOf(err);
    // Only a failure to listen is about the address; anything else (the audit log's lock, its files,
    // the signing key) says what it is, with its own hint.
    if (e.syscall === 'listen') {
      throw new PhigateError(`cannot listen on ${opts.listen}: ${code ?? e.message}`, ExitCode.Error,
        code === 'EADDRINUSE' ? 'another process holds that port; pick another --listen'
          : code === 'EACCES' ? 'ports below 1024 need privileges; pick a port above 1024 with --listen' : undefined);
    }
    const hint = hintOf(err) ?? (code === 'EACCES' || code === 'EPERM' ? dataDirOwnerHint(dataDir) : undefined);
    throw new PhigateError(`cannot start: ${e.message}`, ExitCode.Error, hint);
  }
  log.info('server started', {
    url: started.url, connections: [...policy.connections.keys()].join(','), data_dir: dataDir, policy_version: gateway.policyVersion,
    ...(opts.store ? { store: redactStoreUrl(opts.store) } : {}),
  });
  process.stdout.write(`phigate server listening on ${started.url}\n`);
  if (started.metricsUrl) process.stdout.write(`metrics on ${started.metricsUrl}\n`);
  if (opts.dev) {
    process.stdout.write(`dev mode: OpenID Provider at ${started.url}/oidc with identities alice, bob, carol, agent\n` +
      `  log in with: phigate login --server ${started.url}\n`);
  }
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string): void => {
      log.info('server stopping', { signal });
      gateway.stop(signal).then(resolveStop, resolveStop);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => {
      log.info('reloading policy', { signal: 'SIGHUP', file: resolve(opts.config) });
      gateway.reloadPolicyFile();
    });
  });
}

/** Appends to `file`, created (or narrowed to) mode 0600: log lines name identities and paths. */
function logFileWriter(file: string): (line: string) => void {
  let fd: number;
  try {
    fd = openSync(resolve(file), 'a', 0o600);
    chmodSync(resolve(file), 0o600);
  } catch (err) {
    throw new PhigateError(`cannot open --log-file: ${errnoOf(err) ?? (err as Error).message}`, ExitCode.Error);
  }
  return (line) => {
    try {
      writeSync(fd, line);
    } catch {
      process.stderr.write(line);
    }
  };
}
