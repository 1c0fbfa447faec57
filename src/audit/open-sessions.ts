// Sessions the log shows started and never ended. A server that stops cleanly ends every session
// first, so at startup these are the sessions a crash (kill -9, OOM kill, power loss) cut off. Found
// from the search index alone (48 bytes a record, already in memory): no log line is parsed.
import { typeCode } from './index-format.js';
import { ENTRY_WORDS, type LoadedIndex } from './search-index.js';

export interface OpenSession {
  session: string;
  user: string;
  connection: string;
  /** seq of its session.start record. */
  startSeq: number;
  startedAtMs: number;
  /** Time of the last record naming the session (its last known moment). */
  lastAtMs: number;
  /** Its statement records. */
  statements: number;
}

/** Every session with a session.start and no session.end in the indexed log, oldest first. */
export function findOpenSessions(idx: LoadedIndex): OpenSession[] {
  const startCode = typeCode('session.start');
  const endCode = typeCode('session.end');
  const statementCode = typeCode('statement');
  const open = new Map<number, OpenSession>();
  for (let seq = 0; seq < idx.count; seq++) {
    const w = seq * ENTRY_WORDS;
    const sid = idx.words[w + 7]!;
    if (sid === 0) continue;
    const type = idx.words[w + 10]! & 0xff;
    const at = idx.floats[seq * 6 + 1]!;
    if (type === startCode) {
      open.set(sid, {
        session: idx.dict.values.s[sid] ?? '', user: idx.dict.values.u[idx.words[w + 5]!] ?? '',
        connection: idx.dict.values.c[idx.words[w + 6]!] ?? '', startSeq: seq, startedAtMs: at, lastAtMs: at, statements: 0,
      });
      continue;
    }
    const s = open.get(sid);
    if (!s) continue;
    if (type === endCode) {
      open.delete(sid);
      continue;
    }
    s.lastAtMs = Math.max(s.lastAtMs, at);
    if (type === statementCode) s.statements++;
  }
  return [...open.values()].filter((s) => s.session !== '');
}
