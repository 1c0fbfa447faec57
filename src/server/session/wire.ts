// Fixed protocol messages the session sends on its own, and the WebSocket close-reason limit.
import { FrontendType } from '../../pg/index.js';

export const EMPTY = Buffer.alloc(0);

/** Asks PostgreSQL to send what it has buffered (a client paused at the pipeline depth waits for those answers). */
export const FLUSH = Buffer.from([FrontendType.Flush, 0, 0, 0, 4]);

/** A polite goodbye to a backend the session no longer needs. */
export const TERMINATE = Buffer.from([FrontendType.Terminate, 0, 0, 0, 4]);

/** Close reasons are limited to 123 bytes by the WebSocket protocol. */
export function truncateReason(s: string): string {
  const b = Buffer.from(s);
  return b.length <= 120 ? s : `${b.subarray(0, 117).toString('utf8').replace(/\uFFFD$/, '')}...`;
}
