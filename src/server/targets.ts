// Turns a connection's policy entry into a concrete upstream target, reading its password and CA at
// connect time so that rotated secrets take effect without a restart.
import { errnoOf } from '../common/errors.js';
import { readFileSync, statSync, type Stats } from 'node:fs';
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
      target.password = readChanged(conn.passwordFile).toString('utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw configError(conn, `cannot read password_file ${conn.passwordFile}: ${errnoOf(err) ?? err}`);
    }
  }
  if (conn.tlsCaFile) {
    try {
      target.ca = readChanged(conn.tlsCaFile);
    } catch (err) {
      throw configError(conn, `cannot read tls_ca_file ${conn.tlsCaFile}: ${errnoOf(err) ?? err}`);
    }
  }
  return target;
}

const RECENT_MS = 2_000;
/** What a file held when last read, and how it looked then. */
const files = new Map<string, { data: Buffer; ino: number; size: number; mtimeMs: number; ctimeMs: number }>();

/**
 * A file's bytes, read again only when it changed: one stat per session instead of open, read and
 * close. A rewrite, a rename over it or a symlink swapped to a new file (a Kubernetes secret) changes
 * its inode, size or times, so rotation still takes effect at the next session.
 */
function readChanged(path: string): Buffer {
  const st: Stats = statSync(path);
  const was = files.get(path);
  if (was && was.ino === st.ino && was.size === st.size && was.mtimeMs === st.mtimeMs && was.ctimeMs === st.ctimeMs) return was.data;
  const data = readFileSync(path);
  // File times tick coarsely: a file changed in the last moments could change again with the same
  // size and times, so it is read again until it has been still for a while (as git's racy check).
  // Stats of before the read: a change during it makes the next session read again.
  if (Date.now() - Math.max(st.mtimeMs, st.ctimeMs) > RECENT_MS) files.set(path, { data, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs });
  else files.delete(path);
  return data;
}

function configError(conn: ConnectionPolicy, what: string): UpstreamError {
  return new UpstreamError('server', '08001', `connection "${conn.name}" is misconfigured: ${what}`);
}
