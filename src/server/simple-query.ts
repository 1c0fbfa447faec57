// Runs one simple-protocol query over phigate's own upstream connector and codec (no extra client
// library at run time): demo setup and the masking catalog use it. Rows come back as text.
import { serialize } from 'pg-protocol';
import { BackendFramer, ProtocolError, decodeDataRow, decodeErrorFields } from '../pg/index.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';

export class SqlError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'SqlError';
  }
}

export async function runSql(target: UpstreamTarget, sql: string): Promise<(string | null)[][]> {
  const sets = await runSqlSets(target, sql);
  return sets[sets.length - 1] ?? [];
}

/** Like runSql, for a string of several statements: the rows of every result set, in order. */
export async function runSqlSets(target: UpstreamTarget, sql: string, applicationName = 'phigate-demo-setup'): Promise<(string | null)[][][]> {
  const up = await connectUpstream(target, { application_name: applicationName });
  const sock = up.socket;
  const framer = new BackendFramer();
  const sets: (string | null)[][][] = [];
  let rows: (string | null)[][] = [];
  let failure: Error | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const onFrames = (chunk: Buffer): void => {
        const frames = framer.push(chunk);
        if (frames instanceof ProtocolError) return reject(frames);
        for (const f of frames) {
          if (f.type === 0x44) {
            const row = decodeDataRow(f.body);
            if (row instanceof ProtocolError) return reject(row);
            rows.push(row.map((v) => (v === null ? null : v.toString('utf8'))));
          } else if (f.type === 0x54) {
            rows = [];
            sets.push(rows);
          } else if (f.type === 0x45) {
            const e = decodeErrorFields(f.body);
            failure = e instanceof ProtocolError ? e : new SqlError(e.message, e.code);
          } else if (f.type === 0x5a) {
            return resolve();
          }
        }
      };
      sock.on('data', onFrames);
      sock.once('error', reject);
      sock.once('close', () => reject(new Error('the database closed the connection')));
      if (up.leftover.length > 0) onFrames(up.leftover);
      sock.resume();
      sock.write(serialize.query(sql));
    });
  } finally {
    sock.removeAllListeners('close');
    sock.end(serialize.end());
  }
  if (failure) throw failure;
  return sets;
}
