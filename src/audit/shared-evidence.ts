// Reading the evidence every replica shipped to the shared store (shipper.ts): `phigate audit
// search`, `phigate sessions` and `phigate replay` asked of any replica answer for all of them. The
// store's columns only narrow the candidates; every record is confirmed by `recordMatches` on its
// own line, exactly as a search of the local log is, so both give the same answers.
import type { SharedDatabase } from '../store/shared-db.js';
import type { StoredRecord } from './events.js';
import { sha256Hex } from './canonical.js';
import { sqlKey } from './index-format.js';
import { tableFilterKey } from '../common/table-name.js';
import { parseRecordLine } from './search-index.js';
import {
  DEFAULT_LIMIT, MAX_LIMIT, endSession, recordMatches, sessionOfStart,
  type SearchFilters, type SearchResult, type SessionSummary,
} from './search.js';

/** Rows fetched per round trip while confirming candidates. */
const PAGE = 500;

/** A record from the store, with the chain (replica) it belongs to: seqs are per chain. */
export type SharedRecord = StoredRecord & { chain: string };

export interface SharedRecording {
  session: string;
  chain: string;
  content: Buffer;
  /** SHA-256 of the content as read now. */
  sha256: string;
  /** The seal in the session's session.end record. */
  seal?: string;
}

export class SharedEvidence {
  constructor(private readonly db: SharedDatabase) {}

  /** Newest first across every chain. */
  async search(f: SearchFilters): Promise<SearchResult & { records: SharedRecord[] }> {
    const started = performance.now();
    const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(f.limit ?? DEFAULT_LIMIT)));
    const records: SharedRecord[] = [];
    let read = 0;
    let more = false;
    let after: { at: string; chain: string; seq: string } | undefined;
    for (;;) {
      const rows = (await this.db.query(
        `SELECT chain, seq, at, line FROM phigate.audit_records
         WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at <= $2)
           AND ($3::text IS NULL OR usr = $3) AND ($4::text IS NULL OR connection = $4) AND ($5::text IS NULL OR session = $5)
           AND ($6::text[] IS NULL OR type = ANY($6)) AND ($7::text IS NULL OR decision = $7)
           AND ($8::text IS NULL OR strpos(sql_key, $8) > 0)
           AND ($12::text IS NULL OR table_keys @> ARRAY[$12::text])
           AND ($9::timestamptz IS NULL OR (at, chain, seq) < ($9, $10::text, $11::bigint))
         ORDER BY at DESC, chain DESC, seq DESC LIMIT ${PAGE}`,
        [
          iso(f.since), iso(f.until), f.user ?? null, f.connection ?? null, f.session ?? null,
          f.types && f.types.length > 0 ? [...f.types] : null, f.decision ?? null, f.sql ? sqlKey(f.sql) : null,
          after?.at ?? null, after?.chain ?? null, after?.seq ?? null, f.table !== undefined ? tableFilterKey(f.table) : null,
        ],
      )).rows as { chain: string; seq: string; at: Date; line: string }[];
      for (const row of rows) {
        read++;
        const rec = parseRecordLine(Buffer.from(row.line));
        if (!rec || !recordMatches(rec, f)) continue;
        if (records.length === limit) {
          more = true;
          break;
        }
        records.push({ ...(rec as StoredRecord), chain: row.chain });
      }
      if (more || rows.length < PAGE) break;
      const last = rows[rows.length - 1]!;
      after = { at: last.at.toISOString(), chain: last.chain, seq: last.seq };
    }
    return { records, more, read, total: await this.total(), elapsedMs: performance.now() - started };
  }

  /** Records across every chain in the store. */
  async total(): Promise<number> {
    const r = await this.db.query('SELECT coalesce(sum(shipped_seq + 1), 0)::bigint AS n FROM phigate.audit_chains');
    return Number((r.rows[0] as { n: string }).n);
  }

  /** Sessions started in the window on any replica, newest first, each with its end when it has one. */
  async sessions(f: Pick<SearchFilters, 'user' | 'connection' | 'since' | 'until' | 'limit' | 'session'>): Promise<{ sessions: SessionSummary[]; more: boolean; elapsedMs: number }> {
    const started = performance.now();
    const starts = await this.search({ ...f, types: ['session.start'] });
    const wanted = new Map<string, SessionSummary>();
    for (const r of starts.records) wanted.set(String(r['session']), sessionOfStart(r));
    if (wanted.size > 0) {
      const ends = await this.db.query(
        "SELECT line FROM phigate.audit_records WHERE type = 'session.end' AND session = ANY($1::text[]) ORDER BY at", [[...wanted.keys()]]);
      for (const row of ends.rows as { line: string }[]) {
        const rec = parseRecordLine(Buffer.from(row.line));
        const s = rec && wanted.get(String(rec['session']));
        if (rec && s && !s.ended_at) endSession(s, rec);
      }
    }
    return { sessions: [...wanted.values()], more: starts.more, elapsedMs: performance.now() - started };
  }

  /**
   * The recording of a session id or a unique prefix of one (at least 4 characters) that any
   * replica shipped; undefined when none matches. Throws when a prefix is ambiguous.
   */
  async recording(idOrPrefix: string): Promise<SharedRecording | undefined> {
    const like = `${idOrPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const r = await this.db.query('SELECT session, chain, content FROM phigate.recordings WHERE session LIKE $1 ORDER BY session LIMIT 2', [like]);
    const rows = r.rows as { session: string; chain: string; content: Buffer }[];
    const exact = rows.find((x) => x.session === idOrPrefix);
    if (!exact && rows.length > 1) throw new AmbiguousSession(idOrPrefix);
    const row = exact ?? rows[0];
    if (!row) return undefined;
    const end = await this.db.query(
      "SELECT line FROM phigate.audit_records WHERE type = 'session.end' AND session = $1 LIMIT 1", [row.session]);
    const endRec = end.rows[0] ? parseRecordLine(Buffer.from((end.rows[0] as { line: string }).line)) : undefined;
    const seal = (endRec?.['recording'] as { sha256?: unknown } | undefined)?.sha256;
    return {
      session: row.session, chain: row.chain, content: row.content,
      sha256: sha256Hex(row.content), ...(typeof seal === 'string' ? { seal } : {}),
    };
  }
}

export class AmbiguousSession extends Error {
  constructor(readonly prefix: string) {
    super(`"${prefix}" matches more than one session; give more of the id`);
  }
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
