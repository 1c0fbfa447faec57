// session.start is written with the session's first statement record (one audit write, start first),
// and on its own shortly after when no statement comes: a session's start is never left unwritten.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { auditRecords, startGateway, type Gw } from '../support/harness.js';
import { pgClient } from '../support/clients.js';
import { scrape } from '../support/metrics.js';

let gw: Gw;
let metricsUrl: string;
let port: number;

beforeAll(async () => {
  gw = await startGateway({ serverArgs: ['--metrics-listen', '127.0.0.1:0'] });
  metricsUrl = (await gw.server.waitFor(/metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/))[1]!;
  port = (await gw.connect('ehr', await gw.token('alice'))).port;
  // The connection's catalog is loaded by its first session: later statements are decided at once.
  const c = pgClient(port);
  await c.connect();
  await c.query('SELECT 1');
  await c.end();
});
afterAll(async () => {
  await gw?.close();
});

async function until(what: string, f: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const ofSession = (id: unknown): Record<string, unknown>[] => auditRecords(gw).filter((r) => r['session'] === id);

describe('session.start in the audit log', () => {
  it('goes out in the same write as the first statement\'s record, before it', async () => {
    const before = await scrape(metricsUrl);
    const sessionsBefore = new Set(auditRecords(gw).map((r) => r['session']));
    // Startup, a statement and Terminate in one go: the statement waits in the session until it is ready.
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => {});
    let got = '';
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      // The statement's ReadyForQuery (the second): now Terminate.
      if (got.split('Z\x00\x00\x00\x05').length === 3) sock.end(serialize.end());
    });
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(Buffer.concat([serialize.startup({ user: 'alice', database: 'ehr' }), serialize.query('SELECT 1')]));
    await closed;
    await until('the session ended in the log', () => auditRecords(gw).some((r) => r['type'] === 'session.end' && !sessionsBefore.has(r['session'])));
    const end = auditRecords(gw).find((r) => r['type'] === 'session.end' && !sessionsBefore.has(r['session']))!;
    expect(ofSession(end['session']).map((r) => r['type'])).toEqual(['session.start', 'statement', 'statement.result', 'session.end']);
    const after = await scrape(metricsUrl);
    expect(after.value('phigate_audit_records_total') - before.value('phigate_audit_records_total')).toBe(4);
    // Two writes: session.start with the statement; the statement's result with session.end.
    expect(after.value('phigate_audit_append_seconds_count') - before.value('phigate_audit_append_seconds_count')).toBe(2);
  });

  it('is written on its own, while the session is open, when no statement comes', async () => {
    const sessionsBefore = new Set(auditRecords(gw).map((r) => r['session']));
    const c = pgClient(port);
    await c.connect();
    try {
      await until('the idle session\'s start is in the log', () =>
        auditRecords(gw).some((r) => r['type'] === 'session.start' && !sessionsBefore.has(r['session'])));
      const start = auditRecords(gw).find((r) => r['type'] === 'session.start' && !sessionsBefore.has(r['session']))!;
      expect(ofSession(start['session']).map((r) => r['type'])).toEqual(['session.start']);
    } finally {
      await c.end();
    }
  });
});
