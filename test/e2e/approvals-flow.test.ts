// What a held statement does on the data path: approval runs it, denial and timeout fail it with
// 42501 (aborting the transaction like a real error), Ctrl-C withdraws it, extended-protocol
// executions are held one by one unless released for the session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startGateway, type Gw } from '../support/harness.js';
import { pgClient, psql } from '../support/clients.js';

const RULES = `rules:
  - name: phi-writes
    when: { statement: [insert, update, delete], tables: [flow_t] }
    action: approve
    approvers: [privacy-officers]
    timeout: 1m
  - name: quick
    when: { statement: [update], tables: [flow_quick] }
    action: approve
    approvers: [privacy-officers]
    timeout: 2s
default: allow
`;

let gw: Gw;
let admin: pg.Client;
let port: number;
let connectStderr: () => string;

beforeAll(async () => {
  gw = await startGateway({ policy: RULES });
  admin = new pg.Client({ host: gw.pg.host, port: gw.pg.port, user: gw.pg.superuser.user, password: gw.pg.superuser.password, database: 'ehr' });
  await admin.connect();
  await admin.query(`DROP TABLE IF EXISTS flow_t, flow_quick; CREATE TABLE flow_t (id int); CREATE TABLE flow_quick (id int);
    GRANT ALL ON flow_t, flow_quick TO PUBLIC; INSERT INTO flow_t SELECT generate_series(1, 5); INSERT INTO flow_quick VALUES (1)`);
  const c = await gw.connect('ehr', await gw.token('alice'));
  port = c.port;
  connectStderr = c.stderr;
});
afterAll(async () => {
  await admin?.end();
  await gw?.close();
});

interface Pending { id: string; rule: string; statement: string }
async function api(who: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${gw.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${await gw.token(who)}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}
async function nextPending(rule: string, seen: Set<string>): Promise<Pending> {
  for (let i = 0; i < 200; i++) {
    const { json } = await api('bob', '/v1/approvals');
    const found = (json as { approvals: Pending[] }).approvals.find((a) => a.rule === rule && !seen.has(a.id));
    if (found) {
      seen.add(found.id);
      return found;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no pending approval for rule ${rule}`);
}
const seen = new Set<string>();
const count = async (sql: string): Promise<number> => Number((await admin.query(sql)).rows[0].n);

describe('held statements on the data path', () => {
  it('denial fails the statement with 42501 naming the approver and reason; nothing ran', async () => {
    const held = psql(port, ['-v', 'VERBOSITY=verbose', '-c', 'DELETE FROM flow_t WHERE id = 1']);
    const p = await nextPending('phi-writes', seen);
    // The notice travels gateway -> CLI -> stderr while the approval is already listed: wait for it.
    const notice = `waiting for approval ${p.id} (rule "phi-writes"; approvers: privacy-officers)`;
    for (let i = 0; i < 50 && !connectStderr().includes(notice); i++) await new Promise((r) => setTimeout(r, 100));
    expect(connectStderr()).toContain(notice);
    const d = await api('bob', `/v1/approvals/${p.id}/deny`, { reason: 'not during clinic hours' });
    expect(d.status).toBe(200);
    const r = await held;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/42501: phigate: denied by bob: not during clinic hours \(rule "phi-writes", request apr-/);
    expect(await count('SELECT count(*) AS n FROM flow_t WHERE id = 1')).toBe(1);
  });

  it('a timeout fails the statement with 42501 naming the timeout', async () => {
    const r = await psql(port, ['-c', 'UPDATE flow_quick SET id = 2']);
    expect(r.stderr).toMatch(/phigate: no approver decided within 2s \(rule "quick", request apr-[\w-]+\); the statement was not run/);
    expect(await count('SELECT count(*) AS n FROM flow_quick WHERE id = 2')).toBe(0);
  });

  it('inside a transaction a denied statement aborts it like a real error; ROLLBACK recovers', async () => {
    const script = 'BEGIN;\nSELECT 1;\nDELETE FROM flow_t WHERE id = 2;\nSELECT 2;\nROLLBACK;\nSELECT 3 AS after;\n';
    const held = psql(port, ['-tA', '-v', 'ON_ERROR_STOP=0', '-f', '-'], { input: script });
    const p = await nextPending('phi-writes', seen);
    await api('bob', `/v1/approvals/${p.id}/deny`, { reason: 'no' });
    const r = await held;
    expect(r.stderr).toMatch(/denied by bob: no/);
    expect(r.stderr).toMatch(/current transaction is aborted/);
    expect(r.stdout.trim().split('\n')).toEqual(['BEGIN', '1', 'ROLLBACK', '3']);
    expect(await count('SELECT count(*) AS n FROM flow_t WHERE id = 2')).toBe(1);
  });

  it('Ctrl-C while waiting withdraws the request and cancels the statement', async () => {
    let pid = 0;
    const held = psql(port, ['-c', 'DELETE FROM flow_t WHERE id = 3'], { onSpawn: (x) => (pid = x) });
    const p = await nextPending('phi-writes', seen);
    process.kill(pid, 'SIGINT');
    const r = await held;
    expect(r.stderr).toContain('canceling statement due to user request');
    const all = await api('bob', '/v1/approvals?all=1');
    const mine = (all.json as { approvals: { id: string; status: string }[] }).approvals.find((a) => a.id === p.id);
    expect(mine?.status).toMatch(/withdrawn/);
    expect(await count('SELECT count(*) AS n FROM flow_t WHERE id = 3')).toBe(1);
  });

  it('extended protocol: each execution is held, until an approver releases the statement for the session', async () => {
    const c = pgClient(port);
    await c.connect();
    try {
      const run1 = c.query({ name: 'ins', text: 'INSERT INTO flow_t VALUES ($1)', values: [100] });
      const a1 = await nextPending('phi-writes', seen);
      expect(a1.statement).toBe('INSERT INTO flow_t VALUES ($1)');
      await api('bob', `/v1/approvals/${a1.id}/approve`, { reason: 'one execution' });
      await run1;
      const run2 = c.query({ name: 'ins', values: [101] } as pg.QueryConfig);
      const a2 = await nextPending('phi-writes', seen);
      await api('bob', `/v1/approvals/${a2.id}/approve`, { scope: 'session', reason: 'bulk load' });
      await run2;
      await c.query({ name: 'ins', values: [102] } as pg.QueryConfig);
      await c.query('INSERT INTO flow_t VALUES ($1)', [103]);
      expect(await count('SELECT count(*) AS n FROM flow_t WHERE id >= 100')).toBe(4);
    } finally {
      await c.end();
    }
  });

  it('a client that disconnects while waiting withdraws its request', async () => {
    const c = pgClient(port);
    await c.connect();
    c.on('error', () => {});
    const q = c.query('DELETE FROM flow_t WHERE id = 4').catch(() => {});
    const p = await nextPending('phi-writes', seen);
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await q;
    for (let i = 0; i < 50; i++) {
      const all = await api('bob', '/v1/approvals?all=1');
      const mine = (all.json as { approvals: { id: string; status: string }[] }).approvals.find((a) => a.id === p.id);
      if (mine?.status.includes('withdrawn')) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('request was not withdrawn');
  });
});
