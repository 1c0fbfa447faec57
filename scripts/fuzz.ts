// `npm run fuzz`: the long protocol fuzz. Starts PostgreSQL, a test OpenID Provider, a real gateway
// (masking policy, masked and unmasked readers) and `phigate connect` for a well-behaved client, then
// sends fast-check cases of frontend traffic (test/support/pg-fuzz.ts) through the tunnel until
// --messages are sent (default 1,000,000), checking the oracles throughout (test/support/fuzz-driver.ts).
// Prints the figures; exits 1 on any failed oracle with the seed and the (shrunk) failing bytes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startTestPostgres } from '../test/support/postgres.js';
import { startTestIdp } from '../test/support/oidc.js';
import { run, type Proc } from '../test/support/proc.js';
import { FUZZ_POLICY, FUZZ_RAW_VALUES, FUZZ_SETUP_SQL } from '../test/support/pg-fuzz.js';
import { backendSummary, caseAt, crashLines, formatReport, newLiveKeys, runCase, runFuzz, selectOne, upstreamBackends, type FuzzTarget } from '../test/support/fuzz-driver.js';
import { describeCase } from '../test/support/pg-fuzz.js';
import { scriptPolicy } from '../test/support/script-policy.js';
import { verifyLog } from '../src/audit/verify.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: process.env['FUZZ_MESSAGES'] ?? '1000000' },
    seed: { type: 'string', default: process.env['FUZZ_SEED'] },
    concurrency: { type: 'string', default: process.env['FUZZ_CONCURRENCY'] ?? '8' },
    batch: { type: 'string', default: process.env['FUZZ_BATCH'] ?? '200' },
    'max-rss-mib': { type: 'string', default: process.env['FUZZ_MAX_RSS_MIB'] ?? '1024' },
    'no-shrink': { type: 'boolean', default: false },
    /** SEED:PATH of a reported failure: runs that one case and shows what the gateway answered. */
    replay: { type: 'string' },
  },
});

async function main(): Promise<number> {
  const seed = args.seed !== undefined ? Number(args.seed) : (Date.now() % 2_147_483_647);
  const messages = Number(args.messages);
  process.stdout.write(`phigate fuzz: ${messages.toLocaleString('en-US')} messages, seed ${seed}, ${args.concurrency} connections in parallel, ${process.version}\n`);
  const db = await startTestPostgres();
  const idp = await startTestIdp({ identities: { alice: ['engineering'], olivia: ['engineering', 'privacy-officers'] } });
  const dir = mkdtempSync(join(tmpdir(), 'phigate-fuzz-'));
  const procs: Proc[] = [];
  const admin = new pg.Client({ host: db.info.host, port: db.info.port, user: db.info.superuser.user, password: db.info.superuser.password, database: 'ehr' });
  let keep = false;
  try {
    await admin.connect();
    await admin.query(FUZZ_SETUP_SQL);
    const role = db.info.roles.scram;
    const policy = join(dir, 'phigate.yaml');
    writeFileSync(policy, scriptPolicy({
      issuer: idp.issuer,
      connections: { ehr: { upstream: `postgres://${role.user}@${db.info.host}:${db.info.port}/${db.info.database}`, allowGroups: ['engineering'] } },
      rest: FUZZ_POLICY,
    }));
    // Errors only: the fuzzer's protocol violations would otherwise fill the log; crashes print regardless.
    const server = run(['server', '--config', policy, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--log-level', args.replay ? 'debug' : 'error'], { EHR_DB_PASSWORD: role.password });
    procs.push(server);
    const url = (await server.waitFor(/listening on (http:\/\/[\d.]+:\d+)/))[1]!;
    // The well-behaved client's token is a file `phigate connect` reads for every connection: tokens
    // live 10 minutes, and a long run outlives several.
    const tokenFile = join(dir, 'alice.token');
    let tokenFileAt = Date.now();
    writeFileSync(tokenFile, await idp.mint('alice'), { mode: 0o600 });
    const connect = run(['connect', 'ehr', '--server', url, '--token-file', tokenFile]);
    procs.push(connect);
    const port = Number((await connect.waitFor(/Listening on 127\.0\.0\.1:(\d+)/))[1]);
    // Tokens live 10 minutes: mint again every 5.
    const tokens = new Map<string, { token: string; at: number }>();
    const token = async (reader: 'masked' | 'unmasked'): Promise<string> => {
      const t = tokens.get(reader);
      if (t && Date.now() - t.at < 300_000) return t.token;
      const fresh = { token: await idp.mint(reader === 'masked' ? 'alice' : 'olivia'), at: Date.now() };
      tokens.set(reader, fresh);
      return fresh.token;
    };
    const target: FuzzTarget = {
      url, connection: 'ehr', token,
      serverPid: server.proc.pid!,
      serverAlive: () => server.proc.exitCode === null && server.proc.signalCode === null,
      serverStderr: () => server.stderr(),
      async wellBehaved() {
        if (Date.now() - tokenFileAt > 300_000) {
          writeFileSync(tokenFile, await idp.mint('alice'), { mode: 0o600 });
          tokenFileAt = Date.now();
        }
        await selectOne(new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'ehr', connectionTimeoutMillis: 20_000 }));
      },
      upstreamBackends: () => upstreamBackends(admin, role.user),
      rawValues: FUZZ_RAW_VALUES,
    };
    if (args.replay) {
      const [s, p] = args.replay.split(':').map(Number);
      const c = caseAt(s!, p!);
      process.stdout.write(`${describeCase(c)}\n`);
      const r = await runCase(target, c, { hangMs: 20_000, graceMs: 150, live: newLiveKeys() });
      process.stdout.write(`\nproblem: ${r.problem ? `${r.problem.kind}: ${r.problem.message}` : 'none'}\nreceived: ${backendSummary(r.received)}\n\ngateway log:\n${server.stderr()}\n`);
      return r.problem ? 1 : 0;
    }
    const report = await runFuzz(target, {
      seed, messages, concurrency: Number(args.concurrency), batch: Number(args.batch), maxRssMiB: Number(args['max-rss-mib']),
      shrink: !args['no-shrink'], progress: (l) => process.stdout.write(`  ${l}\n`),
    });
    const stderr = server.stderr();
    const alive = target.serverAlive();
    await server.stop();
    const verify = await verifyLog(join(dir, 'data', 'audit'), { recordingsDir: join(dir, 'data', 'recordings') });
    process.stdout.write(`\n${formatReport(report)}\n`);
    process.stdout.write(`audit log            ${verify.ok ? 'verifies' : 'DOES NOT VERIFY'} (${verify.records.toLocaleString('en-US')} records)\n`);
    const crashes = crashLines(stderr);
    if (crashes.length > 0) process.stdout.write(`gateway stderr shows a crash:\n${crashes.slice(0, 20).join('\n')}\n`);
    const ok = report.failures.length === 0 && verify.ok && alive && server.proc.exitCode === 0 && crashes.length === 0;
    if (!verify.ok) process.stdout.write(`${verify.problems.slice(0, 10).map((p) => `  ${p.code}: ${p.message}`).join('\n')}\n`);
    if (!ok) {
      keep = true;
      process.stdout.write(`\nFAILED; reproduce with: npm run fuzz -- --seed ${seed} --messages ${messages}\n(the gateway's data directory is kept in ${dir})\n`);
    }
    return ok ? 0 : 1;
  } finally {
    await admin.end().catch(() => {});
    await Promise.all(procs.map((p) => p.stop()));
    await idp.close();
    await db.stop();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fuzz failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
