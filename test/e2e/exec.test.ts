// `phigate exec`: PG* variables for the child, its exit code back, signals forwarded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startGateway, type Gw } from '../support/harness.js';

let gw: Gw;
let token: string;
beforeAll(async () => {
  gw = await startGateway();
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
