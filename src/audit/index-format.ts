// The search index's entry format: 48 bytes per record, in seq order, so the record at seq N is
// entry N. Pure functions: what of a record goes into its entry, and how entries are laid out.
// The index is a cache derived from the log; it is never evidence and can always be rebuilt.
//
// Entry layout (little-endian, in 32-bit words):
//   w0-1  byte offset of the record's line in audit.jsonl (float64)
//   w2-3  `at` in ms since the epoch (float64)
//   w4    line length in bytes, newline included
//   w5    user id   (dictionary, 0 = none)
//   w6    connection id
//   w7    session id
//   w8-9  64-bit Bloom filter of the tables the record names (2 bits per name)
//   w10   type code | decision code << 8
//   w11   reserved (0)
import { AUDIT_EVENT_TYPES, STATEMENT_DECISIONS } from './events.js';
import { tableFilterKey } from '../common/table-name.js';

export const ENTRY_BYTES = 48;
export const ENTRY_WORDS = ENTRY_BYTES / 4;

export type DictKind = 'u' | 'c' | 's';

/** What of one record the index keeps. */
export interface IndexFields {
  user?: string;
  connection?: string;
  session?: string;
  tables?: readonly string[];
  type: string;
  decision?: string;
  sql?: string;
}

const TYPE_CODE = new Map<string, number>(AUDIT_EVENT_TYPES.map((t, i) => [t, i + 1]));
const DECISION_CODE = new Map<string, number>(STATEMENT_DECISIONS.map((d, i) => [d, i + 1]));
/** A type or decision this build does not know: matches every filter value, the record decides. */
export const OTHER_CODE = 255;

export function typeCode(type: string): number {
  return TYPE_CODE.get(type) ?? OTHER_CODE;
}

export function decisionCode(decision: string | undefined): number {
  if (decision === undefined) return 0;
  return DECISION_CODE.get(decision) ?? OTHER_CODE;
}

/** The fields an entry is built from, read defensively from whatever a line holds. */
export function indexFields(rec: Record<string, unknown>): IndexFields {
  const str = (k: string): string | undefined => (typeof rec[k] === 'string' ? (rec[k] as string) : undefined);
  const tables = Array.isArray(rec['tables']) ? (rec['tables'] as unknown[]).filter((t): t is string => typeof t === 'string') : undefined;
  // approval.decided says how a hold ended in `outcome`; searching by decision should find it too.
  // A privileged attempt's outcome (granted, refused) is searchable the same way.
  const decision = str('decision') ?? (rec['type'] === 'approval.decided' || rec['type'] === 'privileged' ? str('outcome') : undefined);
  return {
    user: str('user'), connection: str('connection'), session: str('session'), tables,
    type: str('type') ?? '', decision, sql: str('sql'),
  };
}


function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The two bits a table name sets, as [word 0 mask, word 1 mask]. */
export function tableBits(name: string): [number, number] {
  const h = fnv1a(tableFilterKey(name));
  const out: [number, number] = [0, 0];
  for (const bit of [h & 63, (h >>> 6) & 63]) {
    if (bit < 32) out[0] |= 1 << bit;
    else out[1] |= 1 << (bit - 32);
  }
  out[0] >>>= 0;
  out[1] >>>= 0;
  return out;
}

/** tableBits by name: a log names the same few tables over and over (bounded: cleared when full). */
const bitsByName = new Map<string, [number, number]>();

function cachedTableBits(name: string): [number, number] {
  let bits = bitsByName.get(name);
  if (bits === undefined) {
    if (bitsByName.size >= 4096) bitsByName.clear();
    bits = tableBits(name);
    bitsByName.set(name, bits);
  }
  return bits;
}

export function tablesBloom(tables: readonly string[] | undefined): [number, number] {
  const out: [number, number] = [0, 0];
  for (const t of tables ?? []) {
    const [a, b] = cachedTableBits(t);
    out[0] = (out[0] | a) >>> 0;
    out[1] = (out[1] | b) >>> 0;
  }
  return out;
}

/** Table filter semantics: same unqualified name; when both sides are qualified, same schema too. */
export function tableMatches(recorded: string, wanted: string): boolean {
  const r = recorded.toLowerCase().replaceAll('"', '');
  const w = wanted.toLowerCase().replaceAll('"', '');
  if (r === w) return true;
  if (r.includes('.') && w.includes('.')) return false;
  return tableFilterKey(r) === tableFilterKey(w);
}

/** The SQL sidecar's line text: lower case, one line, so a substring search is one indexOf. */
export function sqlKey(sql: string): string {
  return sql.toLowerCase().replace(/[\t\n\r]/g, ' ');
}

export function writeEntry(
  words: Uint32Array, floats: Float64Array, i: number,
  e: { offset: number; atMs: number; length: number; user: number; connection: number; session: number; bloom: [number, number]; type: number; decision: number },
): void {
  const w = i * ENTRY_WORDS;
  floats[i * 6] = e.offset;
  floats[i * 6 + 1] = e.atMs;
  words[w + 4] = e.length;
  words[w + 5] = e.user;
  words[w + 6] = e.connection;
  words[w + 7] = e.session;
  words[w + 8] = e.bloom[0];
  words[w + 9] = e.bloom[1];
  words[w + 10] = e.type | (e.decision << 8);
  words[w + 11] = 0;
}
