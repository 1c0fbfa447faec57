// /metrics through a real gateway: statements allowed, blocked and held move their counters by
// exactly what ran; sessions go up and down; the audit log's latency histograms fill; event-loop
// lag and process metrics are there; an unreachable upstream is counted by cause; and who may
// scrape is as docs/operator.md says (--metrics-listen port open, main port admins/auditors, a
// loopback-only gateway without --metrics-listen open).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startGateway, type Gw } from '../support/harness.js';
import { pgClient } from '../support/clients.js';
import { scrape, type Scrape } from '../support/metrics.js';
import { scratchDatabase } from '../support/postgres.js';

const RULES = `rules:
  - name: no-drop
    when: { statement: [drop] }
    action: block
  - name: hold-updates
    when: { statement: [update], tables: [metrics_t] }
    action: approve
    approvers: [privacy-officers]
    timeout: 1s
default: allow
`;

let gw: Gw;
let metricsUrl: string;
let port: number;

beforeAll(async () => {
  gw = await startGateway({ policy: RULES, serverArgs: ['--metrics-listen', '127.0.0.1:0'] });
  metricsUrl = (await gw.server.waitFor(/metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/))[1]!;
  const admin = new pg.Client({ host: gw.pg.host, port: gw.pg.port, user: gw.pg.superuser.user, password: gw.pg.superuser.password, database: 'ehr' });
  await admin.connect();
  await admin.query('DROP TABLE IF EXISTS metrics_t; CREATE TABLE metrics_t (id int); GRANT ALL ON metrics_t TO PUBLIC; INSERT INTO metrics_t VALUES (1)');
  await admin.end();
  port = (await gw.connect('ehr', await gw.token('alice'))).port;
});
afterAll(async () => {
  await gw?.close();
});

async function until(what: string, f: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const ehr = { connection: 'ehr' };
const decisions = (s: Scrape): Record<string, number> =>
  Object.fromEntries(['allow', 'block', 'approve', 'timeout', 'approved', 'denied', 'error'].map((d) => [d, s.value('phigate_statement_decisions_total', { ...ehr, decision: d })]));

describe('/metrics on a real gateway', () => {
  it('counts sessions and statements allowed, blocked and held by exactly what ran', async () => {
    const before = await scrape(metricsUrl);
    const c = pgClient(port);
    await c.connect();
    await until('the session is active', async () => (await scrape(metricsUrl)).value('phigate_sessions_active', ehr) === before.value('phigate_sessions_active', ehr) + 1);
    for (let i = 0; i < 3; i++) await c.query('SELECT 1');
    await expect(c.query('DROP TABLE metrics_t')).rejects.toMatchObject({ code: '42501' });
    const held = c.query('UPDATE metrics_t SET id = 2').then(() => 'ran', (e: { code?: string }) => e.code);
    await until('the statement is held', async () => (await scrape(metricsUrl)).value('phigate_approvals_held', ehr) === 1);
    expect(await held).toBe('42501');
    const during = await scrape(metricsUrl);
    expect(during.value('phigate_approvals_held', ehr)).toBe(0);
    const d0 = decisions(before);
    const d1 = decisions(during);
    expect({ allow: d1.allow! - d0.allow!, block: d1.block! - d0.block!, approve: d1.approve! - d0.approve!, timeout: d1.timeout! - d0.timeout!,
      approved: d1.approved! - d0.approved!, denied: d1.denied! - d0.denied!, error: d1.error! - d0.error! })
      .toEqual({ allow: 3, block: 1, approve: 1, timeout: 1, approved: 0, denied: 0, error: 0 });
    expect(during.value('phigate_sessions_started_total', ehr) - before.value('phigate_sessions_started_total', ehr)).toBe(1);
    expect(during.value('phigate_upstream_connect_seconds_count', ehr)).toBeGreaterThan(before.value('phigate_upstream_connect_seconds_count', ehr));
    await c.end();
    await until('the session ended', async () => (await scrape(metricsUrl)).value('phigate_sessions_active', ehr) === before.value('phigate_sessions_active', ehr));
    const after = await scrape(metricsUrl);
    expect(after.value('phigate_sessions_ended_total', ehr) - before.value('phigate_sessions_ended_total', ehr)).toBe(1);
    // Identities are never labels.
    expect(after.text).not.toMatch(/alice/);
  });

  it('times audit appends and fsyncs, and carries event-loop lag and process metrics', async () => {
    const before = await scrape(metricsUrl);
    const c = pgClient(port);
    await c.connect();
    await c.query('SELECT 2');
    await c.end();
    await until('an fsync covered the new records', async () =>
      (await scrape(metricsUrl)).value('phigate_audit_fsync_seconds_count') > before.value('phigate_audit_fsync_seconds_count'));
    const after = await scrape(metricsUrl);
    expect(after.value('phigate_audit_append_seconds_count')).toBeGreaterThan(before.value('phigate_audit_append_seconds_count'));
    expect(after.value('phigate_audit_records_total')).toBeGreaterThanOrEqual(before.value('phigate_audit_records_total') + 3);
    expect(after.value('phigate_audit_append_seconds_bucket', { le: '+Inf' })).toBe(after.value('phigate_audit_append_seconds_count'));
    for (const name of ['nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
      expect(after.has(name), name).toBe(true);
    }
    // Without --store there is no shipping to report.
    expect(after.has('phigate_audit_shipping_behind_records')).toBe(false);
  });

  it('counts an unreachable upstream by its cause', async () => {
    const before = await scrape(metricsUrl);
    const broken = await gw.connect('broken', await gw.token('alice'));
    const c = pgClient(broken.port);
    c.on('error', () => {});
    await expect(c.connect()).rejects.toThrow(/could not connect to the database of "broken"/);
    await until('the failure is counted', async () =>
      (await scrape(metricsUrl)).value('phigate_upstream_connect_errors_total', { connection: 'broken' }) > 0);
    const after = await scrape(metricsUrl);
    expect(after.value('phigate_upstream_connect_errors_total', { connection: 'broken', cause: 'unreachable' })
      - before.value('phigate_upstream_connect_errors_total', { connection: 'broken', cause: 'unreachable' })).toBe(1);
    expect(after.value('phigate_sessions_active', { connection: 'broken' })).toBe(0);
  });

  it('with --metrics-listen: that port answers anyone; the main port only admins and auditors', async () => {
    expect((await fetch(metricsUrl)).status).toBe(200);
    expect((await fetch(metricsUrl.replace(/\/metrics$/, '/healthz'))).status).toBe(404);
    const main = `${gw.url}/metrics`;
    const none = await fetch(main);
    expect(none.status).toBe(401);
    const alice = await fetch(main, { headers: { authorization: `Bearer ${await gw.token('alice')}` } });
    expect(alice.status).toBe(403);
    expect(((await alice.json()) as { message: string }).message).toMatch(/only admins and auditors may read \/metrics/);
    for (const who of ['carol', 'root']) {
      const s = await scrape(main, await gw.token(who));
      expect(s.has('phigate_sessions_active'), who).toBe(true);
    }
  });

  it('with --store: shipping lag is reported, and is zero once the store has caught up', async () => {
    const scratch = await scratchDatabase(gw.pg, 'phigate_metrics_store');
    const stored = await startGateway({ idp: gw.idp, serverArgs: ['--store', scratch.urlWithoutPassword], serverEnv: { PGPASSWORD: scratch.password } });
    try {
      const c = pgClient((await stored.connect('ehr', await stored.token('alice'))).port);
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      const url = `${stored.url}/metrics`;
      // One scrape for the condition and the lag: a record synced after it (the session's end) would
      // make a second scrape see a store behind again.
      let s = await scrape(url);
      await until('the store holds every synced record', async () => {
        s = await scrape(url);
        return s.value('phigate_audit_records_total') >= 4 && s.value('phigate_audit_fsync_seconds_count') > 0 && s.value('phigate_audit_shipping_behind_records') === 0;
      });
      expect(s.value('phigate_audit_shipping_lag_seconds')).toBe(0);
      expect(s.value('phigate_audit_shipping_failing')).toBe(0);
    } finally {
      await stored.close();
      await scratch.drop();
    }
  });

  it('a gateway listening on loopback only, without --metrics-listen, serves /metrics without a token', async () => {
    const plain = await startGateway({ idp: gw.idp });
    try {
      const res = await fetch(`${plain.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(await res.text()).toMatch(/^phigate_sessions_active\{connection="ehr"\} 0$/m);
    } finally {
      await plain.close();
    }
  });
});
