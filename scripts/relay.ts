// The floor for one hop: a bare Node TCP relay (`net` + `pipe`, one process, inspects nothing) that
// `npm run bench` puts between pgbench and PostgreSQL, so the gateway's cost per transaction can be
// read against what any single Node hop costs on the same machine in the same run.
// Run: node dist/scripts/relay.js LISTEN_HOST:PORT TARGET_HOST:PORT [--evidence FILE] (port 0: a free
// one); prints `relay listening on HOST:PORT`.
// With --evidence, it is the floor for a hop that keeps phigate's evidence guarantee and nothing else:
// before each chunk from the client goes upstream, one hash-chained JSON record of it (SHA-256 over
// the previous hash and the record) is appended to FILE with one write. It parses, decides and masks
// nothing; the difference between it and the bare relay is what the guarantee alone costs a hop.
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
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

/** Appends one hash-chained record per call to an append-only file, synchronously (in the OS on return). */
function evidenceLog(file: string): { append: (session: number, chunk: Buffer) => void; close: () => void } {
  const fd = openSync(file, 'a');
  let prev = '0'.repeat(64);
  let seq = 0;
  return {
    append(session, chunk) {
      // The statement text as phigate's record carries it: the bytes after the type and length.
      const body = JSON.stringify({ seq: ++seq, t: new Date().toISOString(), type: 'statement', session, bytes: chunk.length, sql: chunk.toString('utf8', 5, Math.min(chunk.length, 4096)), prev });
      prev = createHash('sha256').update(prev).update(body).digest('hex');
      writeSync(fd, `${body.slice(0, -1)},"hash":"${prev}"}\n`);
    },
    close: () => closeSync(fd),
  };
}

/**
 * Listens on `listen` and pipes every connection both ways to `target`; closing either side closes
 * both. With `evidenceFile`, every chunk from a client is recorded there before it goes upstream.
 */
export function startRelay(listen: string, target: string, evidenceFile?: string): Promise<Relay> {
  const l = hostPort(listen);
  const t = hostPort(target);
  const evidence = evidenceFile === undefined ? undefined : evidenceLog(evidenceFile);
  let sessions = 0;
  // TCP_NODELAY both ways, as PostgreSQL, PgBouncer and phigate set it.
  const server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ host: t.host, port: t.port, noDelay: true });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    if (evidence) {
      const session = ++sessions;
      client.on('data', (chunk: Buffer) => {
        evidence.append(session, chunk);
        if (!upstream.write(chunk)) client.pause();
      });
      upstream.on('drain', () => client.resume());
    } else client.pipe(upstream);
    upstream.pipe(client);
  });
  if (evidence) server.on('close', () => evidence.close());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(l.port, l.host, () => {
      const addr = server.address();
      resolve({ server, port: typeof addr === 'object' && addr ? addr.port : l.port });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [listen, target, flag, file] = process.argv.slice(2);
  if (!listen || !target || (flag !== undefined && (flag !== '--evidence' || !file))) {
    process.stderr.write('usage: relay.js LISTEN_HOST:PORT TARGET_HOST:PORT [--evidence FILE]\n');
    process.exit(2);
  }
  startRelay(listen, target, file).then(
    (r) => process.stdout.write(`relay listening on ${hostPort(listen).host}:${r.port}\n`),
    (err: unknown) => {
      process.stderr.write(`relay: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
