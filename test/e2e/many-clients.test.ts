// The finding, reproduced: 150 clients at once through `phigate connect` against a database
// with PostgreSQL's default max_connections (100) and a connection with the default limits. Every
// client either works or gets the gateway's 53300 naming the limit; none reaches PostgreSQL's own
// "too many clients".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type StartedPostgres } from '../support/postgres.js';
import { auditRecords, startGateway, type Gw } from '../support/harness.js';
import { pgClient } from '../support/clients.js';

const CLIENTS = 150;
/** Identities allowed on ehr; 50 clients each, over the default 32 per identity. */
const WHO = ['alice', 'agent', 'olivia'];

let db: StartedPostgres;
let gw: Gw;
const ports = new Map<string, number>();

beforeAll(async () => {
  db = await startTestPostgres({ flags: ['-c', 'max_connections=100'] });
  gw = await startGateway({ pg: db.info });
  for (const who of WHO) ports.set(who, (await gw.connect('ehr', await gw.token(who))).port);
}, 120_000);

afterAll(async () => {
  await gw?.close();
  await db?.stop();
});

describe('150 clients at once', () => {
  it('each works or gets the gateway\'s 53300 naming the limit; none sees PostgreSQL\'s "too many clients"', async () => {
    const clients = Array.from({ length: CLIENTS }, (_, i) => {
      const who = WHO[i % WHO.length]!;
      const c = pgClient(ports.get(who)!, { user: who, connectionTimeoutMillis: 60_000 });
      c.on('error', () => {});
      return c;
    });
    try {
      // Admitted sessions stay open until every client has its answer, so the ceilings are reached.
      const outcomes = await Promise.allSettled(clients.map(async (c) => {
        await c.connect();
        return (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      }));
      const ok = outcomes.filter((o): o is PromiseFulfilledResult<number> => o.status === 'fulfilled');
      const errors = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as { code?: string; message: string });
      const ours = /^phigate: too many sessions (for \S+|on connection "ehr"): \d+ open, at most (32|80) \((limits\.sessions_per_identity|limits\.sessions_per_connection)\)$/;
      const others = errors.filter((e) => e.code !== '53300' || !ours.test(e.message));
      expect(others.map((e) => `${e.code} ${e.message}`)).toEqual([]);
      expect(errors.some((e) => /too many clients/i.test(e.message))).toBe(false);
      // The connection's default ceiling (80) is below max_connections and is what was reached.
      expect(ok.length).toBe(80);
      expect(new Set(ok.map((o) => o.value)).size).toBe(80);
      expect(errors.length).toBe(CLIENTS - 80);
      const refused = auditRecords(gw).filter((r) => r['type'] === 'session.refused');
      expect(refused.length).toBe(CLIENTS - 80);
      expect(refused.every((r) => r['code'] === '53300')).toBe(true);
      console.log(`150 clients: ${ok.length} served, ${errors.length} refused (${
        [...new Set(errors.map((e) => /\((limits\.\w+)\)/.exec(e.message)?.[1]))].join(', ')})`);
    } finally {
      await Promise.allSettled(clients.map((c) => c.end()));
    }
  }, 180_000);
});
