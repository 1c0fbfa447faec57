// `phigate audit export --replica CHAIN`: the same self-contained bundle as an export of a local log
// (export.ts: format, extent, anchors), made from a replica's chain as the shared store holds it, so
// an auditor gets every replica's evidence from whichever replica they reach. `phigate audit verify
// --bundle` checks it offline like any bundle (pin that replica's key: its fingerprint is the chain).
import type { SharedDatabase } from '../store/shared-db.js';
import { planFromRange, type BundleSource, type ExportPlan } from './export.js';
import { parseRecordLine } from './search-index.js';
import { storedCheckpoints, storedRecords } from './stored-chain.js';

/** The plan for `chain`'s records in [since, until]; undefined when the store has no such chain. */
export async function planSharedExport(db: SharedDatabase, chain: string, opts: { since?: number; until?: number } = {}): Promise<ExportPlan | undefined> {
  const c = (await db.query('SELECT public_key FROM phigate.audit_chains WHERE chain = $1', [chain])).rows[0] as { public_key: string } | undefined;
  if (!c) return undefined;
  const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
  const r = (await db.query(
    `SELECT (SELECT coalesce(max(seq), -1) FROM phigate.audit_records WHERE chain = $1)::bigint AS last,
            min(seq)::bigint AS lo, max(seq)::bigint AS hi
     FROM phigate.audit_records
     WHERE chain = $1 AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at <= $3)`,
    [chain, iso(opts.since), iso(opts.until)])).rows[0] as { last: string; lo: string | null; hi: string | null };
  // Malformed ones are left out, as from a local checkpoints file; verify --bundle checks signatures.
  const { checkpoints } = await storedCheckpoints(db, chain, `store:${chain}:checkpoints`);
  const plan = planFromRange({
    lo: r.lo === null ? 0 : Number(r.lo), hi: r.hi === null ? -1 : Number(r.hi), count: Number(r.last) + 1, checkpoints,
    since: opts.since, until: opts.until, pem: c.public_key, pemSource: `store:${chain}`,
  });
  return { ...plan, source: storeSource(db, chain) };
}

function storeSource(db: SharedDatabase, chain: string): BundleSource {
  return {
    async *lines(first, last) {
      for await (const rows of storedRecords(db, chain, first, last)) yield Buffer.from(`${rows.map((x) => x.line).join('\n')}\n`, 'utf8');
    },
    async policyInForceBefore(seq) {
      const row = (await db.query(
        "SELECT line FROM phigate.audit_records WHERE chain = $1 AND seq < $2 AND type = 'policy.activated' ORDER BY seq DESC LIMIT 1",
        [chain, seq])).rows[0] as { line: string } | undefined;
      const rec = row ? parseRecordLine(Buffer.from(row.line)) : undefined;
      return typeof rec?.['policy'] === 'string' ? rec['policy'] : undefined;
    },
    async policyText(version) {
      const row = (await db.query('SELECT text FROM phigate.policies WHERE version = $1', [version])).rows[0] as { text: string } | undefined;
      return row?.text;
    },
  };
}
