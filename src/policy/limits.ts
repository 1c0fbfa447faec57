// The policy file's `limits` key: how much one client may ask of the gateway (message and statement
// sizes, statements per Query, pipeline depth), how many sessions an identity and a connection may
// hold, and how long the gateway waits on peers. Defaults sit well inside what PostgreSQL and this
// process can take, so a hostile or broken client is refused with an error naming the limit instead
// of stalling everyone else or reaching PostgreSQL's own "too many clients".
import { isScalar, type Node } from 'yaml';
import type { Reader } from './yaml-reader.js';
import { describe } from './yaml-reader.js';
import { parseDuration } from './duration.js';

export interface Limits {
  /** Largest frontend message (length field), any type: CopyData rows, Bind parameters. */
  messageBytes: number;
  /** Largest statement text in one Query or Parse message. */
  statementBytes: number;
  /** Most statements in one simple-protocol Query message. */
  statementsPerQuery: number;
  /** Most statements forwarded upstream and not yet answered (pipelined Executes and Queries). */
  pipelineDepth: number;
  /** Most live sessions one identity may hold (over all connections). */
  sessionsPerIdentity: number;
  /** Most live sessions per connection (each holds one upstream backend); `max_sessions` overrides it per connection. */
  sessionsPerConnection: number;
  /** Most sessions one identity may have opening at once (token check, upstream connect, startup). */
  connectsInFlightPerIdentity: number;
  /** How long opening the upstream connection (TCP, TLS, authentication) may take. */
  upstreamConnectTimeoutMs: number;
  /** A session idle inside a transaction this long is ended (0: never). */
  idleInTransactionTimeoutMs: number;
  /** How often the gateway pings a tunnel, and how long a tunnel may stay silent before it is closed. */
  tunnelPingIntervalMs: number;
  tunnelTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  messageBytes: 64 * 1024 * 1024,
  statementBytes: 1024 * 1024,
  statementsPerQuery: 1_000,
  pipelineDepth: 10_000,
  sessionsPerIdentity: 32,
  sessionsPerConnection: 80,
  connectsInFlightPerIdentity: 8,
  upstreamConnectTimeoutMs: 10_000,
  idleInTransactionTimeoutMs: 15 * 60_000,
  tunnelPingIntervalMs: 15_000,
  tunnelTimeoutMs: 45_000,
});

/** Policy key → field, and how its value is written. */
const KEYS: Record<string, { field: keyof Limits; kind: 'bytes' | 'count' | 'duration' | 'duration0' }> = {
  message_bytes: { field: 'messageBytes', kind: 'bytes' },
  statement_bytes: { field: 'statementBytes', kind: 'bytes' },
  statements_per_query: { field: 'statementsPerQuery', kind: 'count' },
  pipeline_depth: { field: 'pipelineDepth', kind: 'count' },
  sessions_per_identity: { field: 'sessionsPerIdentity', kind: 'count' },
  sessions_per_connection: { field: 'sessionsPerConnection', kind: 'count' },
  connects_in_flight_per_identity: { field: 'connectsInFlightPerIdentity', kind: 'count' },
  upstream_connect_timeout: { field: 'upstreamConnectTimeoutMs', kind: 'duration' },
  idle_in_transaction_timeout: { field: 'idleInTransactionTimeoutMs', kind: 'duration0' },
  tunnel_ping_interval: { field: 'tunnelPingIntervalMs', kind: 'duration' },
  tunnel_timeout: { field: 'tunnelTimeoutMs', kind: 'duration' },
};

/** The policy key a field is written as, for error messages that tell the operator what to raise. */
export function limitKey(field: keyof Limits): string {
  return `limits.${Object.entries(KEYS).find(([, v]) => v.field === field)![0]}`;
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };

/** Bytes from `123`, `64kB`, `1MiB`, `1 GiB`; undefined when not a positive size. */
export function parseBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? BYTE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** Human form of a byte count for messages: 1048576 → "1 MiB". */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return `${n} bytes`;
}

/** Largest value a length field can carry: a limit above it means "PostgreSQL's own". */
const MAX_MESSAGE = 0x7fffffff - 4;

export function parseLimits(r: Reader, node: Node | null | undefined): Limits {
  const limits: Limits = { ...DEFAULT_LIMITS };
  if (node === undefined) return limits;
  const m = r.map(node, 'limits', new Set(Object.keys(KEYS)));
  for (const [name, value] of m) {
    const { field, kind } = KEYS[name]!;
    const key = `limits.${name}`;
    const raw = isScalar(value) ? value.value : undefined;
    let n: number | undefined;
    if (kind === 'bytes') {
      n = parseBytes(raw);
      if (n === undefined) r.fail(value, key, `expected a size such as 1048576, 512kB or 1MiB, got ${describe(value)}`);
      if (n > MAX_MESSAGE) r.fail(value, key, `at most ${MAX_MESSAGE} bytes (the protocol's largest message)`);
    } else if (kind === 'count') {
      n = typeof raw === 'number' && Number.isSafeInteger(raw) && raw > 0 ? raw : undefined;
      if (n === undefined) r.fail(value, key, `expected a positive whole number, got ${describe(value)}`);
    } else {
      n = raw === 0 && kind === 'duration0' ? 0 : typeof raw === 'string' ? parseDuration(raw) : undefined;
      if (n === undefined) {
        r.fail(value, key, `expected a duration such as 30s, 15m or 1h${kind === 'duration0' ? ' (0 for none)' : ''}, got ${describe(value)}`);
      }
    }
    limits[field] = n;
  }
  if (limits.statementBytes > limits.messageBytes) {
    r.fail(m.get('statement_bytes') ?? m.get('message_bytes'), 'limits.statement_bytes', 'must not exceed limits.message_bytes');
  }
  if (limits.tunnelTimeoutMs <= limits.tunnelPingIntervalMs) {
    r.fail(m.get('tunnel_timeout') ?? m.get('tunnel_ping_interval'), 'limits.tunnel_timeout', 'must be longer than limits.tunnel_ping_interval');
  }
  return limits;
}

/** A connection's own session ceiling (`connections.NAME.max_sessions`), else the policy-wide one. */
export function sessionsFor(limits: Limits, maxSessions: number | undefined): number {
  return maxSessions ?? limits.sessionsPerConnection;
}
