// `phigate audit verify` for the evidence replicas shipped to the shared store: every chain there is
// checked as a local log is (ChainChecker and checkCheckpoints: links, canonical form, Ed25519
// checkpoint signatures, truncation) plus its sealed recordings. A chain's public key in the store
// must hash to the chain's name, and this replica's own chain must carry this replica's key, so a
// key swapped in the store (to re-sign a rewritten chain) shows. Other replicas' keys are reported
// by fingerprint for auditors to pin.
import type { KeyObject } from 'node:crypto';
import type { SharedDatabase } from '../store/shared-db.js';
import { GENESIS_PREV, sha256Hex } from './canonical.js';
import { keyFingerprint, parsePublicKey } from './keys.js';
import { storedCheckpoints, storedRecords } from './stored-chain.js';
import { ChainChecker, checkCheckpoints, type ChainReport, type VerifyProblem } from './verify.js';

export type { ChainReport } from './verify.js';


/** What verifyLog reports of a log file, for one chain in the store. */
export async function verifySharedChains(db: SharedDatabase, own?: { chain: string; publicKey: KeyObject }): Promise<ChainReport[]> {
  const chains = (await db.query('SELECT chain, public_key, shipped_seq, shipped_at FROM phigate.audit_chains ORDER BY chain')).rows as
    { chain: string; public_key: string; shipped_seq: string; shipped_at: Date | null }[];
  const out: ChainReport[] = [];
  for (const c of chains) out.push(await verifyChain(db, c, own));
  return out;
}

async function verifyChain(
  db: SharedDatabase, c: { chain: string; public_key: string; shipped_seq: string; shipped_at: Date | null }, own?: { chain: string; publicKey: KeyObject },
): Promise<ChainReport> {
  const file = `store:${c.chain}`;
  const cpFile = `store:${c.chain}:checkpoints`;
  const problems: VerifyProblem[] = [];
  const warnings: string[] = [];
  const isOwn = own?.chain === c.chain;
  let key: KeyObject | undefined;
  try {
    key = parsePublicKey(c.public_key, file);
    const fp = keyFingerprint(key);
    if (fp !== c.chain) {
      problems.push({ code: 'key', file, message: `the store's public key for chain ${c.chain} is ${fp}: it was replaced` });
      key = undefined;
    }
  } catch (err) {
    problems.push({ code: 'key', file, message: `the store's public key for chain ${c.chain} is unreadable: ${(err as Error).message}` });
  }
  if (isOwn && key && keyFingerprint(own.publicKey) !== keyFingerprint(key)) {
    problems.push({ code: 'key', file, message: `chain ${c.chain} in the store does not carry this replica's key` });
  }

  const { checkpoints: cps, problems: cpProblems } = await storedCheckpoints(db, c.chain, cpFile);
  problems.push(...cpProblems);
  const checker = new ChainChecker({ file, firstSeq: 0, prev: GENESIS_PREV, want: new Set(cps.map((x) => x.seq)) });
  for await (const rows of storedRecords(db, c.chain)) {
    for (const r of rows) checker.check(Buffer.from(r.line, 'utf8'), r.seq + 1);
  }
  problems.push(...checker.problems);
  const lastSeq = checker.last?.seq ?? -1;
  const shipped = Number(c.shipped_seq);
  if (shipped > lastSeq) {
    problems.push({ code: 'truncated', file, seq: lastSeq + 1, message: `chain ${c.chain} was shipped up to record ${shipped}, but the store ends at record ${lastSeq}: records were removed` });
  }
  if (key) {
    problems.push(...checkCheckpoints(cps, key, checker.hashes, { firstSeq: 0, lastSeq, file, lineOf: (s) => s + 1 }, cpFile));
  }
  if (cps.length === 0 && checker.count > 0) warnings.push(`chain ${c.chain}: no signed checkpoints in the store yet`);

  const recordings = { checked: 0, failed: 0 };
  for (const seal of checker.seals) {
    recordings.checked++;
    const r = (await db.query('SELECT content FROM phigate.recordings WHERE session = $1', [seal.session])).rows as { content: Buffer }[];
    const actual = r[0] ? sha256Hex(r[0].content) : undefined;
    if (actual !== seal.sha256) {
      recordings.failed++;
      problems.push({
        code: 'recording', file, seq: seal.seq,
        message: actual === undefined
          ? `recording of session ${seal.session} (sealed in record ${seal.seq} of chain ${c.chain}) is not in the store`
          : `recording of session ${seal.session} in the store does not match its seal in record ${seal.seq} of chain ${c.chain} (altered)`,
      });
    }
  }
  const lastCp = cps.at(-1);
  const unanchored = lastCp ? Math.max(0, lastSeq - lastCp.seq) : checker.count;
  return {
    chain: c.chain, own: isOwn, ok: problems.length === 0, records: checker.count,
    ...(checker.last ? { head: { seq: checker.last.seq, hash: checker.last.hash } } : {}),
    checkpoints: cps.length, ...(lastCp ? { lastCheckpoint: { seq: lastCp.seq, at: lastCp.at } } : {}), unanchored, recordings,
    ...(c.shipped_at ? { shippedAt: c.shipped_at.toISOString() } : {}), problems, warnings,
  };
}
