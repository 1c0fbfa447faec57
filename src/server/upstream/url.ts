// Parses the `upstream:` URL of a connection (postgres:// or postgresql://) into its parts.
import { isIP } from 'node:net';

export interface UpstreamUrlParts {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new TypeError(`upstream URL has an invalid percent-encoding in its ${what}`);
  }
}

/**
 * `postgres://user[:password]@host[:port][/database]`. The database defaults to the user name and
 * the port to 5432, as in libpq. Query parameters are ignored: TLS and the password have their own
 * settings in the connection. Errors never quote the URL, which may hold a password.
 */
export function parseUpstreamUrl(url: string): UpstreamUrlParts {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    throw new TypeError('upstream URL must start with postgres:// or postgresql://');
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('upstream URL is not a valid URL');
  }
  let host = decode(parsed.hostname, 'host');
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') throw new TypeError('upstream URL has no host');
  if (host.includes(',')) throw new TypeError('upstream URL lists several hosts; phigate connects to exactly one');
  if (host.includes('/')) throw new TypeError('upstream URL names a Unix socket; phigate connects over TCP only');
  if (host.includes(':') && isIP(host) !== 6) throw new TypeError('upstream URL has an invalid IPv6 address');

  let port = 5432;
  if (parsed.port !== '') {
    port = Number(parsed.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError('upstream URL has an invalid port');
  }

  const user = decode(parsed.username, 'user name');
  if (user === '') throw new TypeError('upstream URL has no user name (postgres://USER@host/database)');
  const password = parsed.password === '' ? undefined : decode(parsed.password, 'password');

  const path = parsed.pathname.replace(/^\//, '');
  if (path.includes('/')) throw new TypeError('upstream URL path must be just the database name');
  const database = path === '' ? user : decode(path, 'database name');

  return password === undefined ? { host, port, user, database } : { host, port, user, database, password };
}
