// Runs one simple-protocol query over phigate's own upstream connector and codec (no extra client
// library at run time): demo setup and the masking catalog use it. Rows come back as text.
import { serialize } from 'pg-protocol';
import { BackendFramer, BackendType, ProtocolError, decodeDataRow, decodeErrorFields } from '../pg/index.js';
import { connectUpstream, type UpstreamSession, type UpstreamTarget } from './upstream.js';

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
  const c = await SqlConnection.open(target, applicationName);
  try {
    return await c.query(sql);
  } finally {
    c.close();
  }
}

/** One upstream connection for queries one after another (the catalog watch keeps one open). */
export class SqlConnection {
  private readonly framer = new BackendFramer();
  private closed = false;
  private waiter?: { resolve: () => void; reject: (err: Error) => void; onFrame: (type: number, body: Buffer) => void };

  private constructor(private readonly up: UpstreamSession) {
    const sock = up.socket;
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (err) => this.fail(err));
    sock.on('close', () => this.fail(new Error('the database closed the connection')));
  }

  static async open(target: UpstreamTarget, applicationName: string): Promise<SqlConnection> {
    const up = await connectUpstream(target, { application_name: applicationName });
    const c = new SqlConnection(up);
    if (up.leftover.length > 0) c.onData(up.leftover);
    up.socket.resume();
    return c;
  }

  get alive(): boolean {
    return !this.closed;
  }

  /** The rows of every result set of `sql` (a simple-protocol query), as text. */
  query(sql: string): Promise<(string | null)[][][]> {
    if (this.closed) return Promise.reject(new Error('the connection is closed'));
    if (this.waiter) return Promise.reject(new Error('a query is already running on this connection'));
    const sets: (string | null)[][][] = [];
    let rows: (string | null)[][] = [];
    let failure: Error | undefined;
    return new Promise<(string | null)[][][]>((resolve, reject) => {
      this.waiter = {
        resolve: () => (failure ? reject(failure) : resolve(sets)),
        reject,
        onFrame: (type, body) => {
          if (type === BackendType.DataRow) {
            const row = decodeDataRow(body);
            if (row instanceof ProtocolError) failure ??= row;
            else rows.push(row.map((v) => (v === null ? null : v.toString('utf8'))));
          } else if (type === BackendType.RowDescription) {
            rows = [];
            sets.push(rows);
          } else if (type === BackendType.ErrorResponse) {
            const e = decodeErrorFields(body);
            failure ??= e instanceof ProtocolError ? e : new SqlError(e.message, e.code);
          }
        },
      };
      this.up.socket.write(serialize.query(sql));
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.up.socket.removeAllListeners('close');
    this.up.socket.end(serialize.end());
  }

  private onData(chunk: Buffer): void {
    const frames = this.framer.push(chunk);
    if (frames instanceof ProtocolError) {
      this.fail(frames);
      return;
    }
    for (const f of frames) {
      const w = this.waiter;
      if (!w) continue; // notices between queries
      if (f.type === BackendType.ReadyForQuery) {
        this.waiter = undefined;
        w.resolve();
      } else w.onFrame(f.type, f.body);
    }
  }

  private fail(err: Error): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (!this.closed) {
      this.closed = true;
      this.up.socket.destroy();
    }
    w?.reject(err);
  }
}
