// Many clients at once, and a client that stops reading a huge result, then reads it at a trickle:
// the gateway's memory must stay bounded and the result arrive whole.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { serialize } from 'pg-protocol';
import pg from 'pg';
import { auditRecords, startGateway, type Gw } from '../support/harness.js';
import { pgClient } from '../support/clients.js';

let gw: Gw;
let port: number;
beforeAll(async () => {
  // 200 sessions of one identity on one connection: past the default session limits (test/e2e/session-limits.test.ts).
  gw = await startGateway({ policy: 'limits:\n  sessions_per_identity: 250\n  sessions_per_connection: 250\ndefault: allow\n' });
  port = (await gw.connect('ehr', await gw.token('alice'))).port;
});
afterAll(async () => gw?.close());

async function until(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !check();) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

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
});

// A reader that stops, then reads at a trickle, then at full speed: the gateway's and the CLI's memory
// stay bounded (upstream reading paused through the WebSocket's bufferedAmount and the CLI's local
// socket), the stall outlasts the tunnel timeout without ending the session (the CLI's own pings
// tell the gateway it is alive), other sessions are served meanwhile, and every row arrives intact.
// Through the plain relay (an unmasked reader) and the masking layer (a detector rewrites each row).
const SLOW_POLICY = `limits:
  tunnel_ping_interval: 200ms
  tunnel_timeout: 1s
masking:
  detectors: [us_ssn]
  unmasked_groups: [privacy-officers]
default: allow
`;
/** ~200 MB: rows of a number, an SSN-shaped text the detector masks (serial 0000 is no SSN), and 1,000 bytes of padding. */
const ROWS = 200_000;
const BIG = `SELECT g, 'ssn 123-45-' || lpad((g % 9999 + 1)::text, 4, '0') AS ssn, repeat('x', 1000) AS pad FROM generate_series(1, ${ROWS}) g`;

/** Reads backend messages as they come (the result is never held whole) and checks every row. */
class ResultCheck {
  private pending = Buffer.alloc(0);
  rows = 0;
  later = 0;
  bad: string[] = [];
  ready = 0;
  errors: string[] = [];
  constructor(private readonly masked: boolean) {}

  push(d: Buffer): void {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, d]) : d;
    let off = 0;
    while (off + 5 <= buf.length) {
      const end = off + 1 + buf.readInt32BE(off + 1);
      if (end > buf.length) break;
      // The big result's rows come between the startup's ReadyForQuery and its own; later ones are counted only.
      if (buf[off] === 0x44 && this.ready === 1) this.row(buf.subarray(off + 5, end));
      else if (buf[off] === 0x44) this.later++;
      else if (buf[off] === 0x5a) this.ready++;
      else if (buf[off] === 0x45) this.errors.push(buf.subarray(off + 5, end).toString('latin1'));
      off = end;
    }
    this.pending = Buffer.from(buf.subarray(off));
  }

  private row(b: Buffer): void {
    const fields: string[] = [];
    for (let i = 0, at = 2; i < b.readInt16BE(0); i++) {
      const len = b.readInt32BE(at);
      fields.push(b.subarray(at + 4, at + 4 + len).toString('latin1'));
      at += 4 + len;
    }
    const n = ++this.rows;
    const last4 = String((n % 9999) + 1).padStart(4, '0');
    const ssn = this.masked ? `ssn ***-**-${last4}` : `ssn 123-45-${last4}`;
    if ((fields[0] !== String(n) || fields[1] !== ssn || fields[2] !== 'x'.repeat(1000)) && this.bad.length < 5) {
      this.bad.push(`row ${n}: ${fields[0]} ${fields[1]} (${fields[2]?.length} bytes)`);
    }
  }
}

describe('a slow reader of a large result', () => {
  let slow: Gw;
  beforeAll(async () => {
    slow = await startGateway({ policy: SLOW_POLICY });
  });
  afterAll(async () => slow?.close());

  it.each([
    ['an unmasked reader (plain relay)', 'olivia', false],
    ['a masked reader (masking layer)', 'alice', true],
  ])('%s: bounded memory, other sessions served, the whole result intact', async (_kind, who, masked) => {
    const cli = await slow.connect('ehr', await slow.token(who));
    const serverPid = slow.server.proc.pid!;
    const sock = connect(cli.port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    const check = new ResultCheck(masked);
    let received = 0;
    let budget = Infinity;
    let closed = false;
    sock.once('close', () => (closed = true));
    sock.on('data', (d: Buffer) => {
      received += d.length;
      check.push(d);
      budget -= d.length;
      if (budget <= 0) sock.pause();
    });
    sock.write(serialize.startup({ user: who, database: 'ehr' }));
    await until(() => check.ready === 1);
    // Another session, served while this one stalls; it first reads 50 MB at full speed, which warms
    // the gateway and the CLI up (statement parser, catalog, heap and allocator at their working
    // size), so the growth measured after it is this result's doing.
    const other = pgClient(cli.port, { user: who });
    await other.connect();
    expect((await other.query("SELECT repeat('x', 1000) AS pad FROM generate_series(1, 50000)")).rowCount).toBe(50_000);
    const baseServer = rssMiB(serverPid);
    const baseCli = rssMiB(cli.proc.pid!);
    const peakGrowth = { server: 0, cli: 0 };
    const sample = (): void => {
      peakGrowth.server = Math.max(peakGrowth.server, rssMiB(serverPid) - baseServer);
      peakGrowth.cli = Math.max(peakGrowth.cli, rssMiB(cli.proc.pid!) - baseCli);
    };
    sock.write(serialize.query(BIG));
    await until(() => received >= 8 * 1024 * 1024);

    // Stopped: 3 s, three times the tunnel timeout.
    sock.pause();
    const atStop = received;
    for (let i = 0; i < 6; i++) {
      expect((await other.query('SELECT count(*)::int AS n FROM generate_series(1, 1000)')).rows[0].n).toBe(1000);
      sample();
      await new Promise((r) => setTimeout(r, 500));
    }
    await other.end();
    expect(received).toBe(atStop);

    // A trickle: 64 kB every 50 ms for 3 s.
    const trickle = setInterval(() => {
      budget = 64 * 1024;
      sock.resume();
    }, 50);
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 500));
      sample();
    }
    clearInterval(trickle);
    expect(received).toBeGreaterThan(atStop);

    // Then everything, and the session is still there for another statement.
    budget = Infinity;
    sock.resume();
    await until(() => check.ready >= 2 || check.errors.length > 0 || closed, 90_000);
    expect(closed).toBe(false);
    sock.write(serialize.query('SELECT 1'));
    await until(() => check.ready >= 3 || check.errors.length > 0 || closed);
    sock.destroy();
    expect(check.errors).toEqual([]);
    expect(check.bad).toEqual([]);
    expect(check.rows).toBe(ROWS);
    expect(check.later).toBe(1);
    expect(received).toBeGreaterThan(200_000_000);
    console.log(`slow reader (${who}): peak RSS growth while stalled and trickling: server ${peakGrowth.server.toFixed(0)} MiB, CLI ${peakGrowth.cli.toFixed(0)} MiB`);
    expect(peakGrowth.server).toBeLessThan(96);
    expect(peakGrowth.cli).toBeLessThan(96);
    const ends = auditRecords(slow).filter((r) => r.type === 'session.end' && r.reason === 'tunnel timeout');
    expect(ends).toEqual([]);
  }, 120_000);
});
