// A client that does not wait for AuthenticationOk: StartupMessage, a query and Terminate in one write
// (a fuzzer, a hand-written driver). The query runs once the session is up and the Terminate ends the
// session then, as PostgreSQL itself would, instead of being dropped with the session left open.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { serialize } from 'pg-protocol';
import { gatewayAndPort, type Gw } from '../support/harness.js';

let gw: Gw;
let port: number;

beforeAll(async () => ({ gw, port } = await gatewayAndPort()));
afterAll(async () => gw?.close());

describe('startup, query and Terminate in one write', () => {
  it('answers the query and closes the connection', async () => {
    const sock = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    sock.on('error', () => {});
    const closed = new Promise<boolean>((r) => {
      sock.once('close', () => r(true));
      setTimeout(() => r(false), 15_000).unref();
    });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(Buffer.concat([serialize.startup({ user: 'alice', database: 'ehr' }), serialize.query("SELECT 'pipelined-startup' AS v"), serialize.end()]));
    const wasClosed = await closed;
    sock.destroy();
    expect(received.toString('latin1')).toContain('pipelined-startup');
    expect(wasClosed).toBe(true);
  });
});
