// The local end of `phigate connect` / `phigate exec`: a loopback TCP listener whose every accepted
// connection becomes one tunnel stream to the gateway.
import { createServer, type Server, type Socket } from 'node:net';
import { carryThroughTunnel, type TunnelOptions } from './client.js';
import { ExitCode, PhigateError } from '../cli/errors.js';

export interface LocalListener {
  host: string;
  port: number;
  /** Stops accepting and closes every open client connection. */
  close(): Promise<void>;
}

export async function startLocalListener(opts: TunnelOptions & { host?: string; port?: number }): Promise<LocalListener> {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const server: Server = createServer({ pauseOnConnect: true, noDelay: true }, (sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    carryThroughTunnel(sock, opts).catch((err: Error) => {
      opts.say(`phigate: ${err.message}`);
      sock.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new PhigateError(
        err.code === 'EADDRINUSE' ? `port ${opts.port} on ${host} is already in use` : `cannot listen on ${host}:${opts.port}: ${err.message}`,
        ExitCode.Error,
        err.code === 'EADDRINUSE' ? 'pick another --port, or omit it for a free one' : undefined,
      ));
    });
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 0);
  return {
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
