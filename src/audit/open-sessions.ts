// Sessions the log shows started and never ended. A server that stops cleanly ends every session
// before it writes server.stop, so only sessions started after the last server.stop can be open: at
// startup these are the sessions a crash (kill -9, OOM kill, power loss) cut off. The log is read
// backwards to that point only, so a clean restart reads one line however long the log is.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { preadSync } from './lines.js';

export interface OpenSession {
  session: string;
  user: string;
  connection: string;
  /** seq of its session.start record. */
  startSeq: number;
  startedAt: string;
}

const CHUNK = 256 * 1024;
const START = Buffer.from('"type":"session.start"');
const END = Buffer.from('"type":"session.end"');
const STOP = Buffer.from('"type":"server.stop"');

/** Every session with a session.start and no session.end after the log's last server.stop, oldest first. */
export function findOpenSessions(logFile: string): OpenSession[] {
  const fd = openSync(logFile, 'r');
  try {
    const ended = new Set<string>();
    const open: OpenSession[] = [];
    for (const line of linesBackward(fd, fstatSync(fd).size)) {
      // Substrings first, parse only candidates: a nested "type" (an audit.search filter) is not the record's.
      const stop = line.includes(STOP);
      const end = !stop && line.includes(END);
      const start = !stop && !end && line.includes(START);
      if (!stop && !end && !start) continue;
      const rec = parse(line);
      if (!rec) continue;
      if (rec['type'] === 'server.stop') break;
      const session = rec['session'];
      if (typeof session !== 'string') continue;
      if (rec['type'] === 'session.end') ended.add(session);
      else if (rec['type'] === 'session.start' && !ended.has(session)) {
        open.push({
          session, user: String(rec['user'] ?? ''), connection: String(rec['connection'] ?? ''), startSeq: Number(rec['seq']), startedAt: String(rec['at']),
        });
      }
    }
    return open.reverse();
  } finally {
    closeSync(fd);
  }
}

/** Complete lines (without their newline) from the last to the first. */
function* linesBackward(fd: number, size: number): Generator<Buffer> {
  let carry = Buffer.alloc(0);
  for (let end = size; end > 0;) {
    const start = Math.max(0, end - CHUNK);
    const buf = carry.length ? Buffer.concat([preadSync(fd, start, end - start), carry]) : preadSync(fd, start, end - start);
    end = start;
    let stop = buf.length;
    if (buf[stop - 1] === 10) stop--;
    for (let nl = buf.lastIndexOf(10, stop - 1); nl !== -1; nl = buf.lastIndexOf(10, stop - 1)) {
      yield buf.subarray(nl + 1, stop);
      stop = nl;
    }
    // Bytes before the first newline of this chunk begin a line that started earlier.
    carry = Buffer.from(buf.subarray(0, stop));
    if (end === 0 && carry.length > 0) yield carry;
  }
}

function parse(line: Buffer): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(line.toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
