// Pairs every statement execution the session forwards (a Query, an Execute) with the backend
// messages that finish it, in protocol order, so that each one gets its own statement.result record
// even when a client pipelines many before reading any answer. Pure state machine (sans-I/O).
//
// Protocol facts it relies on: a Query ends with its ReadyForQuery (after one CommandComplete per
// statement in the string, or an ErrorResponse); an Execute ends with CommandComplete,
// EmptyQueryResponse, PortalSuspended or ErrorResponse; after an error in the extended protocol the
// server skips everything up to the next Sync, whose ReadyForQuery ends the batch.
import { BackendType } from '../pg/index.js';
import { Fifo } from './fifo.js';

export interface StatementOutcome<R> {
  /** What the caller passed for this statement (its evidence record). */
  ref: R;
  durationMs: number;
  /** Rows from the command tags (SELECT 3, UPDATE 1); 0 when none carried a count. */
  rows: number;
  tag?: string;
  /** SQLSTATE when it failed. */
  error?: string;
  /** Never ran: an earlier message of its pipeline failed, so the server skipped it. */
  skipped?: boolean;
  /** A portal run with a row limit stopped before its end (PortalSuspended). */
  suspended?: boolean;
}

interface Execution<R> {
  t: 'query' | 'execute';
  /** Undefined for a message that was not recorded as a statement (a refused one). */
  ref: R | undefined;
  start: number;
  rows: number;
  tag?: string;
  error?: string;
}
type Entry<R> = Execution<R> | { t: 'sync' };

const TAGS_WITHOUT_ROWS = /^(BEGIN|COMMIT|ROLLBACK|SET|RESET)/;

export class StatementResults<R> {
  private readonly queue = new Fifo<Entry<R>>();
  private readonly done: StatementOutcome<R>[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** A Query went upstream; `ref` stands for its statement record (undefined: none to complete). */
  query(ref: R | undefined): void {
    this.queue.push({ t: 'query', ref, start: this.now(), rows: 0 });
  }

  /** An Execute (or what replaces a refused one) went upstream. */
  execute(ref: R | undefined): void {
    this.queue.push({ t: 'execute', ref, start: this.now(), rows: 0 });
  }

  sync(): void {
    this.queue.push({ t: 'sync' });
  }

  /** Statements waiting for their answer. */
  get pending(): number {
    let n = 0;
    for (const e of this.queue) if (e.t !== 'sync') n++;
    return n;
  }

  /**
   * One backend message by type; `tag` is a CommandComplete's tag, `code` an ErrorResponse's
   * SQLSTATE. Returns the statements this message finished (often none), oldest first.
   */
  backend(type: number, info: { tag?: string; code?: string } = {}): StatementOutcome<R>[] {
    const head = this.queue.peek();
    switch (type) {
      case BackendType.CommandComplete:
        if (head?.t === 'query') addTag(head, info.tag);
        else if (head?.t === 'execute') {
          addTag(head, info.tag);
          this.finish({});
        }
        break;
      case BackendType.EmptyQueryResponse:
        if (head?.t === 'execute') this.finish({});
        break;
      case BackendType.PortalSuspended:
        if (head?.t === 'execute') this.finish({ suspended: true });
        break;
      case BackendType.ErrorResponse:
        if (head?.t === 'query') head.error ??= info.code;
        else if (head?.t === 'execute') {
          head.error = info.code;
          this.finish({});
        }
        break;
      case BackendType.ReadyForQuery:
        // Executes still waiting here were skipped after an error; then the Query or Sync it answers.
        while (this.queue.peek()?.t === 'execute') this.finish({ skipped: true });
        if (this.queue.peek()?.t === 'query') this.finish({});
        else if (this.queue.peek()?.t === 'sync') this.queue.shift();
        break;
    }
    return this.done.length === 0 ? [] : this.done.splice(0);
  }


  private finish(extra: { skipped?: boolean; suspended?: boolean }): void {
    const e = this.queue.shift() as Execution<R>;
    if (e.ref === undefined) return;
    const o: StatementOutcome<R> = { ref: e.ref, durationMs: Math.max(0, this.now() - e.start), rows: e.rows };
    if (e.tag !== undefined) o.tag = e.tag;
    if (e.error !== undefined) o.error = e.error;
    if (extra.skipped) o.skipped = true;
    if (extra.suspended) o.suspended = true;
    this.done.push(o);
  }
}

function addTag<R>(e: Execution<R>, tag: string | undefined): void {
  if (tag === undefined) return;
  e.tag = tag;
  const n = /(\d+)$/.exec(tag);
  if (n && !TAGS_WITHOUT_ROWS.test(tag)) e.rows += Number(n[1]);
}
