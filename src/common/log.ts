// The log of `phigate server` (and of what it hosts: audit, approvals, the store): one line per event on stderr, `text` for people or `json` for collectors.
// Callers pass identities, codes and counts; never statement text, parameters or tokens. Request
// targets are logged as paths (`pathOf`): a query string may carry a token or PHI. As a second line,
// anything shaped like a JWT is replaced before a line is written.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | undefined | null>;
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Three base64url parts: a JWS compact token (what bearer tokens here are), whatever field it hides in. */
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}/g;

/** Replaces every JWT-shaped run in `s` (a log value) by a marker. */
export function scrubTokens(s: string): string {
  return s.includes('eyJ') ? s.replace(JWT_SHAPE, '<token removed>') : s;
}

/** The path of a request target, without its query string or fragment: what logs may show. */
export function pathOf(target: string | undefined): string {
  const t = target ?? '/';
  const end = t.search(/[?#]/);
  return end === -1 ? t : t.slice(0, end);
}

export interface Logger {
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export function createLogger(opts: { format?: 'text' | 'json'; level?: LogLevel; write?: (line: string) => void } = {}): Logger {
  const format = opts.format ?? 'text';
  const min = ORDER[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const log = (level: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (ORDER[level] < min) return;
    const ts = new Date().toISOString();
    if (format === 'json') {
      write(`${scrubTokens(JSON.stringify({ ts, level, msg, ...fields }))}\n`);
      return;
    }
    let line = `${ts} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const s = String(v);
      line += ` ${k}=${/[\s"=]/.test(s) || s === '' ? JSON.stringify(s) : s}`;
    }
    write(`${scrubTokens(line)}\n`);
  };
  return {
    log,
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
  };
}

export const silentLogger: Logger = createLogger({ write: () => {} });
