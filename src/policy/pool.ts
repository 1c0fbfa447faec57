// The `connections.NAME.pool` key: whether the gateway keeps authenticated upstream connections
// for reuse by later sessions of that connection, and how many and for how long. Absent or `true`
// means the defaults; `false` turns pooling off (a new upstream connection per session).
import { isScalar, type Node } from 'yaml';
import type { Reader } from './yaml-reader.js';
import { describe } from './yaml-reader.js';
import { parseDuration } from './duration.js';
import type { Limits } from './limits.js';

export interface PoolPolicy {
  enabled: boolean;
  /** Most upstream connections of the pool (in use, idle and being reset); the session ceiling when absent. */
  size?: number;
  /** An idle pooled connection is closed after this long. */
  idleTimeoutMs?: number;
  /** A pooled connection is closed once this old (when next idle), so none outlives credential or server changes for long. */
  maxLifetimeMs?: number;
}

/** What a pool runs with: the policy's values, defaults filled in. */
export interface PoolSettings {
  size: number;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
}

export const DEFAULT_POOL_IDLE_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_POOL_MAX_LIFETIME_MS = 60 * 60_000;

const POOL_KEYS = new Set(['size', 'idle_timeout', 'max_lifetime']);

export function parsePool(r: Reader, node: Node | null | undefined, key: string): PoolPolicy {
  if (isScalar(node) && typeof node.value === 'boolean') return { enabled: node.value };
  const m = r.map(node, key, POOL_KEYS);
  const pool: PoolPolicy = { enabled: true };
  if (m.has('size')) {
    const v = m.get('size');
    const n = isScalar(v) ? v.value : undefined;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) r.fail(v, `${key}.size`, `expected a positive whole number, got ${describe(v)}`);
    pool.size = n;
  }
  for (const [name, field] of [['idle_timeout', 'idleTimeoutMs'], ['max_lifetime', 'maxLifetimeMs']] as const) {
    if (!m.has(name)) continue;
    const v = m.get(name);
    const raw = isScalar(v) ? v.value : undefined;
    const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
    if (ms === undefined) r.fail(v, `${key}.${name}`, `expected a duration such as 30s, 10m or 1h, got ${describe(v)}`);
    pool[field] = ms;
  }
  return pool;
}

/**
 * The settings of a connection's pool under `limits`, or undefined when pooling is off. The default
 * size is the connection's session ceiling: the pool then never makes a session wait that admission
 * let in, and never holds more upstream connections than the ceiling allows sessions.
 */
export function poolSettings(pool: PoolPolicy | undefined, limits: Pick<Limits, 'sessionsPerConnection'>, maxSessions: number | undefined): PoolSettings | undefined {
  if (pool !== undefined && !pool.enabled) return undefined;
  return {
    size: pool?.size ?? maxSessions ?? limits.sessionsPerConnection,
    idleTimeoutMs: pool?.idleTimeoutMs ?? DEFAULT_POOL_IDLE_TIMEOUT_MS,
    maxLifetimeMs: pool?.maxLifetimeMs ?? DEFAULT_POOL_MAX_LIFETIME_MS,
  };
}
