// Worker-thread entry for audit searches and session lists (search-thread.ts starts it): reading the
// index and the matching records of a large log takes tens to hundreds of milliseconds, which on the
// gateway's event loop would stall every session's traffic for that long.
import { parentPort } from 'node:worker_threads';
import { listSessions, searchAudit } from './search.js';
import type { SearchRequest, SearchReply } from './search-thread.js';

parentPort?.on('message', (m: SearchRequest) => {
  let reply: SearchReply;
  try {
    reply = m.kind === 'search'
      ? { id: m.id, kind: 'search', result: searchAudit(m.auditDir, m.filters) }
      : { id: m.id, kind: 'sessions', result: listSessions(m.auditDir, m.filters) };
  } catch (err) {
    reply = { id: m.id, kind: 'error', message: (err as Error).message };
  }
  parentPort!.postMessage(reply);
});
