// Time arguments of the evidence commands and endpoints: an ISO 8601 instant, or (for "since") a
// duration back from now such as 24h, 7d or 90m.
import { parseDuration } from '../policy/duration.js';

export class TimeArgumentError extends Error {
  constructor(readonly argument: string, readonly value: string) {
    super(`${argument}: cannot read "${value.slice(0, 60)}" as a time; use an ISO 8601 time (2025-03-01T12:00:00Z) or a duration (24h, 7d)`);
    this.name = 'TimeArgumentError';
  }
}

/** ms since the epoch for `value`; durations count back from `now`. */
export function parseTimeArg(name: string, value: string, now = Date.now()): number {
  const v = value.trim();
  const d = parseDuration(v);
  if (d !== undefined) return now - d;
  // A bare date means its start, in UTC, as everywhere else in the log.
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  if (!Number.isFinite(t)) throw new TimeArgumentError(name, value);
  return t;
}
