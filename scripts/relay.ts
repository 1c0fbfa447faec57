// The floor for one hop: a bare Node TCP relay (`net` + `pipe`, one process, inspects nothing) that
// `npm run bench` puts between pgbench and PostgreSQL, so the gateway's cost per transaction can be
// read against what any single Node hop costs on the same machine in the same run.
// Run: node dist/scripts/relay.js LISTEN_HOST:PORT TARGET_HOST:PORT (port 0: a free one); prints
// `relay listening on HOST:PORT`.
import { connect, createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface Relay {
  server: Server;
  port: number;
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`expected HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: s.slice(0, i), port };
}

/** Listens on `listen` and pipes every connection both ways to `target`; closing either side closes both. */
export function startRelay(listen: string, target: string): Promise<Relay> {
  const l = hostPort(listen);
  const t = hostPort(target);
  // TCP_NODELAY both ways, as PostgreSQL, PgBouncer and phigate set it.
  const server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ host: t.host, port: t.port, noDelay: true });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(l.port, l.host, () => {
      const addr = server.address();
      resolve({ server, port: typeof addr === 'object' && addr ? addr.port : l.port });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [listen, target] = process.argv.slice(2);
  if (!listen || !target) {
    process.stderr.write('usage: relay.js LISTEN_HOST:PORT TARGET_HOST:PORT\n');
    process.exit(2);
  }
  startRelay(listen, target).then(
    (r) => process.stdout.write(`relay listening on ${hostPort(listen).host}:${r.port}\n`),
    (err: unknown) => {
      process.stderr.write(`relay: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
