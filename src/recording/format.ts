// The session recording format: NDJSON, one header line then timed events, sealed by the SHA-256 of
// the file's bytes (kept in the session.end audit record). Result values are what the client was
// sent after masking; nothing raw ever reaches a recording.
//
//   {"type":"header","format":"phigate-recording","version":1,"session":"…","started_at":"ISO",
//    "user":"…","connection":"…","row_cap":1000, …meta}
//   {"t":12,"type":"statement","n":1,"sql":"SELECT … $1","decision":"allow",…}
//   {"t":13,"type":"wait","n":1,"approval":"apr-…","state":"waiting"|"approved"|…}
//   {"t":15,"type":"columns","n":1,"columns":[{"name":"id","type":23},…]}
//   {"t":15,"type":"row","n":1,"values":["1",null,"***-**-6789"]}
//   {"t":16,"type":"complete","n":1,"tag":"SELECT 3","rows":3,"recorded":3}
//   {"t":16,"type":"error"|"notice","n":1,"severity":"ERROR","code":"42501","message":"…"}
//   {"t":90,"type":"end","statements":1,"reason":"client closed"}
// A session a crash cut off is ended at the next start: its torn last line (if any) is cut and an end
// with reason "interrupted", `t` of its last event and `cut_bytes` (the torn line's length) appended.
// `t` is milliseconds since started_at; `n` the statement number in the session. A `complete` whose
// `recorded` is less than `rows` hit the row cap: the first `recorded` rows are in the file.
import { readFileSync } from 'node:fs';

export const RECORDING_FORMAT = 'phigate-recording';
export const RECORDING_VERSION = 1;
export const DEFAULT_ROW_CAP = 1000;

/** What the gateway knows about the session when it starts recording. */
export interface RecordingMeta {
  user: string;
  connection: string;
  subject?: string;
  kind?: string;
  agent?: string;
  client_addr?: string;
  application_name?: string;
  client_user?: string;
  client_database?: string;
}

export interface RecordingHeader extends RecordingMeta {
  type: 'header';
  format: typeof RECORDING_FORMAT;
  version: number;
  session: string;
  started_at: string;
  row_cap: number;
}

export interface Column {
  name: string;
  /** PostgreSQL type OID (numbers are right-aligned, as psql does). */
  type?: number;
}

export interface Message {
  severity?: string;
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
}

export type WaitState = 'waiting' | 'approved' | 'denied' | 'timeout' | 'withdrawn' | 'cancelled';

export type RecordingEvent =
  | { t: number; type: 'statement'; n: number; sql: string; decision: string; rule?: string; kinds?: string[]; tables?: string[] }
  | { t: number; type: 'wait'; n: number; approval: string; state: WaitState; approvers?: string[]; approver?: string; reason?: string; rule?: string }
  | { t: number; type: 'columns'; n: number; columns: Column[] }
  | { t: number; type: 'row'; n: number; values: (string | null)[] }
  | { t: number; type: 'complete'; n: number; tag: string; rows: number; recorded: number }
  | ({ t: number; type: 'error' | 'notice'; n: number } & Message)
  | { t: number; type: 'end'; statements: number; reason?: string; cut_bytes?: number };

export interface Recording {
  header: RecordingHeader;
  events: RecordingEvent[];
  /** The end line is present: the session was closed, not cut off by a crash. */
  complete: boolean;
  /** A final line without its newline was ignored (crash while writing). */
  torn: boolean;
}

export class RecordingFormatError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'RecordingFormatError';
  }
}

/** File name of a session's recording: session ids are ours (UUIDs), anything else is refused. */
export function recordingFileName(sessionId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(sessionId)) throw new RangeError(`not a session id: ${JSON.stringify(sessionId.slice(0, 40))}`);
  return `${sessionId}.ndjson`;
}

/** Parses a recording's text; a torn last line (crash) is dropped, anything else malformed throws. */
export function parseRecording(text: string, file = '<recording>'): Recording {
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const torn = last !== '';
  if (lines.length === 0) throw new RecordingFormatError(file, 1, 'empty recording (no header line)');
  let header: RecordingHeader;
  try {
    header = JSON.parse(lines[0]!) as RecordingHeader;
  } catch {
    throw new RecordingFormatError(file, 1, 'the header line is not JSON');
  }
  if (header.type !== 'header' || header.format !== RECORDING_FORMAT) throw new RecordingFormatError(file, 1, `not a ${RECORDING_FORMAT} file`);
  if (header.version > RECORDING_VERSION) throw new RecordingFormatError(file, 1, `format version ${header.version} is newer than this phigate understands (${RECORDING_VERSION})`);
  const events: RecordingEvent[] = [];
  let complete = false;
  for (let i = 1; i < lines.length; i++) {
    let e: RecordingEvent;
    try {
      e = JSON.parse(lines[i]!) as RecordingEvent;
    } catch {
      throw new RecordingFormatError(file, i + 1, 'not JSON');
    }
    if (typeof e?.type !== 'string' || typeof e.t !== 'number') throw new RecordingFormatError(file, i + 1, 'not a recording event');
    if (e.type === 'end') complete = true;
    events.push(e);
  }
  return { header, events, complete, torn };
}

export function readRecording(path: string): Recording {
  return parseRecording(readFileSync(path, 'utf8'), path);
}
