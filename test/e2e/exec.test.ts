// `phigate exec`: PG* variables for the child, its exit code back, signals forwarded, several
// agents at once on their own ports, and each agent session recorded with its label and reason.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { run, startGateway, type Gw } from '../support/harness.js';
import { expectTools } from '../support/expect-tools.js';

// Some tests run psql through `phigate exec`: without it they fail, and this names the package.
expectTools('psql');

/** A database of its own with a `patients` table, so no other test's tables are in the way. */
const EXEC_DB = 'exec_ehr';
const PATIENTS = 37;

let gw: Gw;
let token: string;
beforeAll(async () => {
  const db = inject('pg');
  const admin = new pg.Client({ host: db.host, port: db.port, user: db.superuser.user, password: db.superuser.password, database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${EXEC_DB}`);
    await admin.query(`CREATE DATABASE ${EXEC_DB} OWNER ${db.roles.scram.user}`);
  } finally {
    await admin.end();
  }
  const ehr = new pg.Client({ host: db.host, port: db.port, user: db.roles.scram.user, password: db.roles.scram.password, database: EXEC_DB });
  await ehr.connect();
  try {
    await ehr.query(`CREATE TABLE patients (id int PRIMARY KEY); INSERT INTO patients SELECT generate_series(1, ${PATIENTS})`);
  } finally {
    await ehr.end();
  }
  // One more connection (continuing the harness's connections map), open to mallory's group only,
  // so that for mallory \`phigate exec\` needs no --connection.
  gw = await startGateway({
    policy: `  exec-ehr:
    upstream: postgres://${db.roles.scram.user}@127.0.0.1:${db.port}/${EXEC_DB}
    password_env: EHR_DB_PASSWORD
    tls: disable
    allow_groups: [marketing]
default: allow
`,
  });
  token = await gw.token('agent');
});
afterAll(async () => gw?.close());

function exec(args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(['exec', '--server', gw.url, ...args], { PHIGATE_TOKEN: token, PGPASSWORD: 'must-not-leak', ...env });
}

describe('phigate exec', () => {
  it('runs psql against a private port and returns its output and exit code', async () => {
    const p = exec(['--connection', 'ehr', '--', 'psql', '-X', '-tA', '-c', 'select current_user, 6 * 7']);
    const { code } = await p.exited;
    expect(p.stderr()).toBe('');
    expect(p.stdout().trim()).toBe(`${gw.pg.roles.scram.user}|42`);
    expect(code).toBe(0);
  });

  it('picks the only connection the identity may use when --connection is omitted', async () => {
    const p = exec(['--', 'psql', '-X', '-tA', '-c', 'select 1']);
    expect((await p.exited).code).toBe(0);
    expect(p.stdout().trim()).toBe('1');
  });

  it('exports PG* variables and DATABASE_URL, and no password', async () => {
    const p = exec(['--connection', 'ehr', '--name', 'claude', '--', 'sh', '-c',
      'echo "$PGHOST|$PGPORT|$PGUSER|$PGDATABASE|$PGSSLMODE|$DATABASE_URL|$PHIGATE_SESSION_LABEL|${PGPASSWORD:-none}"']);
    expect((await p.exited).code).toBe(0);
    const [host, port, user, db, ssl, url, label, pw] = p.stdout().trim().split('|');
    expect(host).toBe('127.0.0.1');
    expect(Number(port)).toBeGreaterThan(0);
    expect(user).toBe('agent');
    expect(db).toBe('ehr');
    expect(ssl).toBe('disable');
    expect(url).toBe(`postgres://agent@127.0.0.1:${port}/ehr?sslmode=disable`);
    expect(label).toBe('claude');
    expect(pw).toBe('none');
  });

  it('returns a failing child\'s exit code unchanged', async () => {
    const p = exec(['--connection', 'ehr', '--', 'sh', '-c', 'exit 7']);
    expect((await p.exited).code).toBe(7);
    const q = exec(['--connection', 'ehr', '--', 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'select * from missing_table']);
    expect((await q.exited).code).toBe(1);
    expect(q.stderr()).toMatch(/relation "missing_table" does not exist/);
  });

  it('forwards SIGTERM to the child and exits 128+15', async () => {
    const p = exec(['--connection', 'ehr', '--', 'sh', '-c', 'trap "echo got-term; exit 143" TERM; echo ready; while :; do sleep 0.05; done']);
    await p.waitFor(/ready/);
    p.proc.kill('SIGTERM');
    const { code } = await p.exited;
    expect(p.stdout()).toContain('got-term');
    expect(code).toBe(143);
  });

  it('says so when the command does not exist (exit 127) and when no command is given (exit 2)', async () => {
    const p = exec(['--connection', 'ehr', '--', 'no-such-command-xyz']);
    expect((await p.exited).code).toBe(127);
    expect(p.stderr()).toMatch(/command not found: no-such-command-xyz/);
    const q = exec(['--connection', 'ehr']);
    expect((await q.exited).code).toBe(2);
  });

  it('refuses without a token (exit 3) before running anything', async () => {
    const p = exec(['--connection', 'ehr', '--', 'sh', '-c', 'echo ran'], { PHIGATE_TOKEN: '' });
    expect((await p.exited).code).toBe(3);
    expect(p.stdout()).not.toContain('ran');
  });
});

describe('phigate exec with psql and agents', () => {
  it("prints `select count(*) from patients` and returns psql's exit code; a failing child's code comes back unchanged", async () => {
    const mallory = await gw.token('mallory');
    const p = run(['exec', '--server', gw.url, '--', 'psql', '-c', 'select count(*) from patients'], { PHIGATE_TOKEN: mallory });
    expect((await p.exited).code).toBe(0);
    expect(p.stdout()).toMatch(new RegExp(`^ +count *\\n-+\\n +${PATIENTS}\\n\\(1 row\\)`, 'm'));
    const q = run(['exec', '--server', gw.url, '--', 'psql', '-v', 'ON_ERROR_STOP=1', '-c', 'select count(*) from no_such_table'], { PHIGATE_TOKEN: mallory });
    expect((await q.exited).code).toBe(1);
    expect(q.stderr()).toMatch(/relation "no_such_table" does not exist/);
    const r = run(['exec', '--server', gw.url, '--', 'sh', '-c', 'psql -tA -c "select count(*) from patients" && exit 42'], { PHIGATE_TOKEN: mallory });
    expect((await r.exited).code).toBe(42);
    expect(r.stdout().trim()).toBe(String(PATIENTS));
  });

  it('runs several agents at once, each on its own port, each session recorded with its label and reason', async () => {
    // Each child waits (at most 20 s) until both have their ports, so the two really run at once.
    const dir = mkdtempSync(join(gw.dir, 'agents-'));
    const agent = (name: string): ReturnType<typeof exec> => exec(['--connection', 'ehr', '--name', name, '--reason', `ticket for ${name}`, '--', 'sh', '-c',
      `echo "$PGPORT" > ${dir}/${name}; i=0; while { [ ! -s ${dir}/one ] || [ ! -s ${dir}/two ]; } && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done; ` +
      `psql -X -tA -c "select '$PHIGATE_SESSION_LABEL', pg_backend_pid()"; echo "port=$PGPORT"`]);
    const [one, two] = [agent('one'), agent('two')];
    const [a, b] = await Promise.all([one.exited, two.exited]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const portOf = (p: typeof one): string => /port=(\d+)/.exec(p.stdout())![1]!;
    expect(portOf(one)).not.toBe(portOf(two));
    expect(one.stdout()).toMatch(/^one\|\d+$/m);
    expect(two.stdout()).toMatch(/^two\|\d+$/m);
    // The audit log has one agent session per run, labelled, with its reason.
    const deadline = Date.now() + 10_000;
    let starts: Record<string, unknown>[] = [];
    while (Date.now() < deadline) {
      const text = readFileSync(join(gw.dir, 'data', 'audit', 'audit.jsonl'), 'utf8');
      starts = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((r) => r['type'] === 'session.start' && (r['agent'] === 'one' || r['agent'] === 'two'));
      if (starts.length >= 2) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(starts).toEqual(expect.arrayContaining([
      expect.objectContaining({ agent: 'one', kind: 'agent', user: 'agent', reason: 'ticket for one', connection: 'ehr' }),
      expect.objectContaining({ agent: 'two', kind: 'agent', user: 'agent', reason: 'ticket for two', connection: 'ehr' }),
    ]));
  });
});
