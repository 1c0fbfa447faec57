// `npm run bench` (connections section): the gateway's own part of a new session, without the CLI and
// pgbench hops (pgbench -C itself is measured by bench-datapath.ts's benchConnections).
import WebSocket from 'ws';
import { serialize } from 'pg-protocol';
import { TUNNEL_PATH_PREFIX } from '../src/tunnel/protocol.js';
import { BackendType, FrontendType, TransactionStatusByte } from '../src/pg/index.js';

const READY = Buffer.from([BackendType.ReadyForQuery, 0, 0, 0, 5, TransactionStatusByte.Idle]);
const TERMINATE = Buffer.from([FrontendType.Terminate, 0, 0, 0, 4]);

/**
 * The gateway's own part of a new session, without the CLI and pgbench hops: a tunnel stream opened
 * straight to the server, a StartupMessage, until ReadyForQuery; the average of `n`, one at a time.
 */
export async function gatewayReadyMs(serverUrl: string, connection: string, token: string, n: number): Promise<number> {
  const url = `${serverUrl.replace(/^http/, 'ws')}${TUNNEL_PATH_PREFIX}${encodeURIComponent(connection)}`;
  const once = (): Promise<number> => new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    let got = Buffer.alloc(0);
    ws.once('open', () => ws.send(serialize.startup({ user: 'bench', database: 'ehr', application_name: 'pgbench' }), { binary: true }));
    ws.on('message', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (!got.includes(READY)) return;
      const ms = performance.now() - t0;
      ws.once('close', () => resolve(ms));
      ws.send(TERMINATE, { binary: true });
      ws.close();
    });
    ws.once('error', reject);
  });
  await once();
  let total = 0;
  for (let i = 0; i < n; i++) total += await once();
  return total / n;
}
