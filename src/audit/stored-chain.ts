// One replica's chain as the shared store holds it (shipped by shipper.ts): its records in seq
// order, page by page, and its signed checkpoints, parsed as a checkpoints file is. What verify
// and export read from the store, read in one place.
import type { SharedDatabase } from '../store/shared-db.js';
import { parseCheckpoints, type ParsedCheckpoint, type VerifyProblem } from './verify.js';

/** Records per round trip. */
const PAGE = 5000;

/** Records first..last (all by default) of `chain`, in seq order, a page at a time. */
export async function* storedRecords(db: SharedDatabase, chain: string, first = 0, last = Number.MAX_SAFE_INTEGER): AsyncGenerator<{ seq: number; line: string }[]> {
  for (let after = first - 1; after < last;) {
    const rows = (await db.query(
      `SELECT seq, line FROM phigate.audit_records WHERE chain = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT ${PAGE}`,
      [chain, after, last])).rows as { seq: string; line: string }[];
    if (rows.length === 0) return;
    yield rows.map((r) => ({ seq: Number(r.seq), line: r.line }));
    if (rows.length < PAGE) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

/** `chain`'s checkpoints in seq order, checked like the lines of a checkpoints file named `file`. */
export async function storedCheckpoints(db: SharedDatabase, chain: string, file: string): Promise<{ checkpoints: ParsedCheckpoint[]; problems: VerifyProblem[] }> {
  const rows = (await db.query('SELECT line FROM phigate.audit_checkpoints WHERE chain = $1 ORDER BY seq', [chain])).rows as { line: string }[];
  return parseCheckpoints(rows.map((r) => `${r.line}\n`).join(''), file);
}
