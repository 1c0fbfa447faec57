// Pairs every backend message with the frontend message that caused it, so the masking layer knows
// which statement and which result description a DataRow or CopyData belongs to. Pure state machine
// over the two message streams (sans-I/O): the session feeds it what it forwards both ways.
//
// Why it is needed: in the extended protocol, rows arrive after Execute with no RowDescription; the
// description came earlier from Describe (statement or portal), and the row format codes from Bind.
// A client that never described a portal gets a Describe injected by the session (`needsDescribe`),
// whose answer the tracker swallows.
import { BackendType, type FieldDescription } from '../pg/index.js';
import { Fifo } from './fifo.js';

export interface ResultShape {
  /** SQL of the statement that produces these rows. */
  sql: string;
  /** For a multi-statement simple query: which result set (0-based) of the string. */
  resultIndex: number;
  fields: FieldDescription[];
}

/** What the session must do with one backend message. */
export type BackendVerdict =
  | { kind: 'pass' }
  /** Not for the client: the answer to a Describe the session injected. */
  | { kind: 'swallow' }
  | { kind: 'rowDescription'; shape: ResultShape }
  | { kind: 'dataRow'; shape: ResultShape | undefined }
  | { kind: 'copyOut'; sql: string; resultIndex: number; format: number; columnFormats: number[] }
  | { kind: 'copyData'; sql: string; resultIndex: number; format: number; columnFormats: number[] };

/**
 * What each forwarded message will be answered with. Statements and portals are held as the objects
 * the message meant when it was forwarded: a name can stand for another one by the time the answer
 * comes (`Describe P ''; Parse ''; Bind ''; Execute ''`), and the answer belongs to the first.
 */
type Pending =
  | { t: 'query'; sql: string; results: number }
  | { t: 'parse'; sql: string }
  | { t: 'bind' }
  | { t: 'describeS'; statement: Statement | undefined }
  | { t: 'describeP'; portal: Portal | undefined; injected: boolean }
  | { t: 'execute'; portal: Portal | undefined }
  | { t: 'close'; injected: boolean }
  | { t: 'sync' }
  | { t: 'fn' };

interface Statement {
  sql: string;
  fields?: FieldDescription[];
}
interface Portal {
  statement: Statement;
  resultFormats: number[];
  fields?: FieldDescription[];
  /** Built on the first row, so every row of an Execute shares one shape (and one masking plan). */
  shape?: ResultShape;
}

export class ResultTracker {
  /** What each forwarded message will be answered with, oldest first. */
  private readonly queue = new Fifo<Pending>();
  private readonly statements = new Map<string, Statement>();
  private readonly portals = new Map<string, Portal>();
  /** The result currently streaming (after 'T' in a query, or during an Execute). */
  private current?: ResultShape;
  private copy?: { sql: string; resultIndex: number; format: number; columnFormats: number[] };
  /**
   * After an error in the extended protocol the server ignores every message up to the next Sync.
   * Messages forwarded after the error arrived (the client's Execute and Sync may come in a later
   * chunk) get no answer either: they are not queued, or every later answer would be paired with
   * the wrong message (a DataRow taken for another statement's, passed unmasked).
   */
  private skipping = false;
  /** Queries, Executes and FunctionCalls on their way and not yet answered (limits.pipeline_depth). */
  private running = 0;
  /** Describes on their way per portal or statement: needsDescribe asks per Execute, so no queue scan. */
  private readonly describing = new Map<Portal | Statement, number>();

  /** Statements (Queries, Executes, FunctionCalls) forwarded and not yet answered. */
  get statementsPending(): number {
    return this.running;
  }

  private push(p: Pending): void {
    this.queue.push(p);
    if (p.t === 'query' || p.t === 'execute' || p.t === 'fn') this.running++;
    const d = p.t === 'describeP' ? p.portal : p.t === 'describeS' ? p.statement : undefined;
    if (d !== undefined) this.describing.set(d, (this.describing.get(d) ?? 0) + 1);
  }

  private shift(): void {
    const p = this.queue.shift();
    if (p === undefined) return;
    if (p.t === 'query' || p.t === 'execute' || p.t === 'fn') this.running--;
    const d = p.t === 'describeP' ? p.portal : p.t === 'describeS' ? p.statement : undefined;
    if (d !== undefined) {
      const n = (this.describing.get(d) ?? 1) - 1;
      if (n > 0) this.describing.set(d, n);
      else this.describing.delete(d);
    }
  }

  /** Every forwarded message has been answered, or will be discarded by the server unanswered. */
  get idle(): boolean {
    return this.queue.length === 0;
  }

  // ---- frontend side, in the order messages are forwarded ----

  query(sql: string): void {
    if (this.skipping) return;
    this.push({ t: 'query', sql, results: 0 });
  }

  parse(name: string, sql: string): void {
    if (this.skipping) return;
    this.statements.set(name, { sql });
    this.push({ t: 'parse', sql });
  }

  bind(portal: string, statement: string, resultFormats: number[]): void {
    if (this.skipping) return;
    const st = this.statements.get(statement) ?? { sql: '' };
    this.portals.set(portal, { statement: st, resultFormats });
    this.push({ t: 'bind' });
  }

  describe(kind: 'S' | 'P', name: string, injected = false): void {
    if (this.skipping) return;
    this.push(kind === 'S' ? { t: 'describeS', statement: this.statements.get(name) } : { t: 'describeP', portal: this.portals.get(name), injected });
  }

  /** True when the session must inject `Describe P portal` before this Execute. */
  needsDescribe(portal: string): boolean {
    const p = this.portals.get(portal);
    if (p === undefined || p.fields !== undefined || p.statement.fields !== undefined) return false;
    // A Describe of this very portal (or its statement) is already on its way: its answer comes first.
    return !this.describing.has(p) && !this.describing.has(p.statement);
  }

  execute(portal: string): void {
    if (this.skipping) return;
    this.push({ t: 'execute', portal: this.portals.get(portal) });
  }

  /** `injected`: a Close the session sent on its own (its CloseComplete is not for the client). */
  close(kind: 'S' | 'P', name: string, injected = false): void {
    if (this.skipping) return;
    if (kind === 'S') this.statements.delete(name);
    else this.portals.delete(name);
    this.push({ t: 'close', injected });
  }

  sync(): void {
    this.skipping = false;
    this.push({ t: 'sync' });
  }

  functionCall(): void {
    if (this.skipping) return;
    this.push({ t: 'fn' });
  }

  /** The SQL text the next backend message answers (a Query, a Parse, the statement an Execute runs): where an error's position points. */
  pendingSql(): string | undefined {
    const head = this.queue.peek();
    if (head === undefined) return undefined;
    if (head.t === 'query' || head.t === 'parse') return head.sql;
    if (head.t === 'execute') return head.portal?.statement.sql;
    return undefined;
  }

  // ---- backend side ----

  backend(type: number, fields: () => FieldDescription[]): BackendVerdict {
    // Asynchronous messages may come at any time.
    if (type === BackendType.NoticeResponse || type === BackendType.ParameterStatus || type === BackendType.NotificationResponse) return PASS;
    const head = this.queue.peek();
    if (type === BackendType.ErrorResponse) return this.onError(head);
    if (!head) return PASS;
    switch (head.t) {
      case 'query':
        return this.inQuery(head, type, fields);
      case 'parse':
      case 'bind':
        if (type === BackendType.ParseComplete || type === BackendType.BindComplete) this.shift();
        return PASS;
      case 'close':
        if (type !== BackendType.CloseComplete) return PASS;
        this.shift();
        return head.injected ? SWALLOW : PASS;
      case 'describeS':
        if (type === BackendType.ParameterDescription) return PASS;
        if (type === BackendType.RowDescription || type === BackendType.NoData) {
          this.shift();
          const st = head.statement;
          const f = type === BackendType.RowDescription ? fields() : [];
          if (st) st.fields = f;
          return type === BackendType.RowDescription && st ? { kind: 'rowDescription', shape: { sql: st.sql, resultIndex: 0, fields: f } } : PASS;
        }
        return PASS;
      case 'describeP': {
        if (type !== BackendType.RowDescription && type !== BackendType.NoData) return PASS;
        this.shift();
        const p = head.portal;
        const f = type === BackendType.RowDescription ? fields() : [];
        if (p) p.fields = f;
        if (head.injected) return SWALLOW;
        return type === BackendType.RowDescription && p ? { kind: 'rowDescription', shape: { sql: p.statement.sql, resultIndex: 0, fields: f } } : PASS;
      }
      case 'execute':
        return this.inExecute(head, type);
      case 'sync':
        if (type === BackendType.ReadyForQuery) {
          this.shift();
          this.current = undefined;
        }
        return PASS;
      case 'fn':
        if (type === BackendType.ReadyForQuery) this.shift();
        return PASS;
    }
  }

  private inQuery(head: Extract<Pending, { t: 'query' }>, type: number, fields: () => FieldDescription[]): BackendVerdict {
    switch (type) {
      case BackendType.RowDescription:
        this.current = { sql: head.sql, resultIndex: head.results, fields: fields() };
        return { kind: 'rowDescription', shape: this.current };
      case BackendType.DataRow:
        return { kind: 'dataRow', shape: this.current };
      case BackendType.CommandComplete:
      case BackendType.EmptyQueryResponse:
        head.results++;
        this.current = undefined;
        this.copy = undefined;
        return PASS;
      case BackendType.CopyOutResponse:
        return this.copyOut(head.sql, head.results);
      case BackendType.CopyData:
        return this.copy ? { kind: 'copyData', ...this.copy } : PASS;
      case BackendType.ReadyForQuery:
        this.shift();
        this.current = undefined;
        this.copy = undefined;
        return PASS;
      default:
        return PASS;
    }
  }

  private inExecute(head: Extract<Pending, { t: 'execute' }>, type: number): BackendVerdict {
    const p = head.portal;
    switch (type) {
      case BackendType.DataRow: {
        if (!p) return { kind: 'dataRow', shape: undefined };
        if (!p.shape) {
          const f = p.fields ?? p.statement.fields;
          if (f) p.shape = { sql: p.statement.sql, resultIndex: 0, fields: withFormats(f, p.resultFormats) };
        }
        return { kind: 'dataRow', shape: p.shape };
      }
      case BackendType.CommandComplete:
      case BackendType.EmptyQueryResponse:
      case BackendType.PortalSuspended:
        this.shift();
        this.copy = undefined;
        return PASS;
      case BackendType.CopyOutResponse:
        return this.copyOut(p?.statement.sql ?? '', 0);
      case BackendType.CopyData:
        return this.copy ? { kind: 'copyData', ...this.copy } : PASS;
      default:
        return PASS;
    }
  }

  private copyOut(sql: string, resultIndex: number): BackendVerdict {
    // The body is read by the caller; the tracker only needs to know a COPY OUT is streaming.
    this.copy = { sql, resultIndex, format: 0, columnFormats: [] };
    return { kind: 'copyOut', ...this.copy };
  }

  /** The session decodes CopyOutResponse and tells the tracker the formats. */
  setCopyFormats(format: number, columnFormats: number[]): void {
    if (this.copy) this.copy = { ...this.copy, format, columnFormats };
  }

  private onError(head: Pending | undefined): BackendVerdict {
    this.current = undefined;
    this.copy = undefined;
    if (!head) return PASS;
    if (head.t === 'query' || head.t === 'fn') {
      // A simple query ends with ReadyForQuery after its error.
      return PASS;
    }
    // Extended protocol: the server discards everything until Sync, including what is still to come.
    while (this.queue.length > 0 && this.queue.peek()!.t !== 'sync') this.shift();
    if (this.queue.length === 0) this.skipping = true;
    return PASS;
  }
}

const PASS: BackendVerdict = { kind: 'pass' };
const SWALLOW: BackendVerdict = { kind: 'swallow' };

/** Bind's result format codes: none = all text, one = for all, else one per column. */
function withFormats(fields: FieldDescription[], formats: number[]): FieldDescription[] {
  if (formats.length === 0) return fields.every((f) => f.format === 0) ? fields : fields.map((f) => ({ ...f, format: 0 }));
  return fields.map((f, i) => ({ ...f, format: formats.length === 1 ? formats[0]! : (formats[i] ?? 0) }));
}
