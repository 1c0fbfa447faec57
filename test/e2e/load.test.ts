// Many clients at once, and a client that stops reading a huge result: the gateway's memory must stay bounded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { serialize } from 'pg-protocol';
import pg from 'pg';
import { startGateway, type Gw } from '../support/harness.js';
import { pgClient } from '../support/clients.js';

let gw: Gw;
let port: number;
let connectPid: number;
beforeAll(async () => {
  // 200 sessions of one identity on one connection: past the default session limits (test/e2e/limits.test.ts).
  gw = await startGateway({ policy: 'limits:\n  sessions_per_identity: 250\n  sessions_per_connection: 250\ndefault: allow\n' });
  const c = await gw.connect('ehr', await gw.token('alice'));
  port = c.port;
  connectPid = c.proc.pid!;
});
afterAll(async () => gw?.close());

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

describe('load', () => {
  it('serves 200 concurrent client connections through one server, none failing', async () => {
    const clients: pg.Client[] = Array.from({ length: 200 }, () => pgClient(port, { connectionTimeoutMillis: 30_000 }));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      const results = await Promise.allSettled(
        clients.map((c, i) => c.query('SELECT $1::int AS i, pg_backend_pid() AS pid, pg_sleep(0.2)', [i])),
      );
      const failed = results.filter((r) => r.status === 'rejected');
      expect(failed).toEqual([]);
      const pids = new Set(results.map((r) => (r as PromiseFulfilledResult<pg.QueryResult>).value.rows[0].pid));
      expect(pids.size).toBe(200);
      results.forEach((r, i) => expect((r as PromiseFulfilledResult<pg.QueryResult>).value.rows[0].i).toBe(i));
    } finally {
      await Promise.allSettled(clients.map((c) => c.end()));
    }
  });

  it('does not buffer a 1 GB result for a client that stopped reading', async () => {
    const serverPid = gw.server.proc.pid!;
    const baseServer = rssMiB(serverPid);
    const baseCli = rssMiB(connectPid);
    const sock = connect(port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    let received = 0;
    let ready = false;
    sock.on('data', (d: Buffer) => {
      received += d.length;
      if (!ready && d.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) ready = true;
    });
    sock.write(serialize.startup({ user: 'alice', database: 'ehr' }));
    for (let i = 0; i < 100 && !ready; i++) await new Promise((r) => setTimeout(r, 50));
    expect(ready).toBe(true);
    // ~1 GB: one million rows of 1,000 bytes
    sock.write(serialize.query("SELECT repeat('x', 1000) FROM generate_series(1, 1000000)"));
    while (received < 8 * 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
    sock.pause();
    await new Promise((r) => setTimeout(r, 4000));
    const atPause = received;
    const growthServer = rssMiB(serverPid) - baseServer;
    const growthCli = rssMiB(connectPid) - baseCli;
    sock.destroy();
    expect(atPause).toBeLessThan(200 * 1024 * 1024);
    expect(growthServer).toBeLessThan(96);
    expect(growthCli).toBeLessThan(96);
  });
});
