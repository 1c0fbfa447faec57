// Test TLS material: a throwaway CA and a localhost server certificate made with the openssl CLI.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { spawnFailure } from './prereqs.js';

export interface TestCerts {
  caCert: string;
  serverCert: string;
  serverKey: string;
}

/** Writes ca.crt, server.crt and server.key into `dir` (SAN: localhost, 127.0.0.1). */
export function makeTestCerts(dir: string): TestCerts {
  const ca = join(dir, 'ca');
  const srv = join(dir, 'server');
  const run = (args: string[]): void => {
    try {
      execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      throw spawnFailure('openssl', err as Error);
    }
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=phigate test CA',
    '-keyout', `${ca}.key`, '-out', `${ca}.crt`]);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', `${srv}.key`, '-out', `${srv}.csr`]);
  const ext = join(dir, 'san.ext');
  execFileSync('sh', ['-c', `printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > '${ext}'`]);
  run(['x509', '-req', '-in', `${srv}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-days', '2', '-extfile', ext, '-out', `${srv}.crt`]);
  return { caCert: `${ca}.crt`, serverCert: `${srv}.crt`, serverKey: `${srv}.key` };
}
