// Turns a connection's policy entry into a concrete upstream target, reading its password and CA at
// connect time so that rotated secrets take effect without a restart.
import { errnoOf } from '../common/errors.js';
import { readFileSync } from 'node:fs';
import type { ConnectionPolicy } from '../policy/file.js';
import { parseUpstreamUrl, UpstreamError, type UpstreamTarget } from './upstream.js';

export function resolveUpstreamTarget(conn: ConnectionPolicy, env: NodeJS.ProcessEnv = process.env): UpstreamTarget {
  const url = parseUpstreamUrl(conn.upstream);
  const target: UpstreamTarget = {
    host: url.host,
    port: url.port,
    user: url.user,
    database: url.database,
    tls: conn.tls,
  };
  if (conn.passwordEnv) {
    const pw = env[conn.passwordEnv];
    if (pw === undefined) {
      throw configError(conn, `environment variable ${conn.passwordEnv} (password_env) is not set on the server`);
    }
    target.password = pw;
  } else if (conn.passwordFile) {
    try {
      target.password = readFileSync(conn.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw configError(conn, `cannot read password_file ${conn.passwordFile}: ${errnoOf(err) ?? err}`);
    }
  }
  if (conn.tlsCaFile) {
    try {
      target.ca = readFileSync(conn.tlsCaFile);
    } catch (err) {
      throw configError(conn, `cannot read tls_ca_file ${conn.tlsCaFile}: ${errnoOf(err) ?? err}`);
    }
  }
  return target;
}

function configError(conn: ConnectionPolicy, what: string): UpstreamError {
  return new UpstreamError('server', '08001', `connection "${conn.name}" is misconfigured: ${what}`);
}
