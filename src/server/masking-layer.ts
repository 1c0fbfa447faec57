// The session's masking layer: rewrites every backend message that carries result values (DataRow,
// CopyData) for a reader who may not see raw PHI, using the result tracker to know which statement
// and description each row belongs to, RowDescription + the catalog for plain column references,
// and statement lineage for everything else. Pure apart from the catalog snapshot it reads.
import {
  BackendType, ProtocolError, decodeErrorFields, decodeRowDescription, errorResponse, noticeResponse,
  type BackendFrame, type ErrorFields, type FieldDescription,
} from '../pg/index.js';
import {
  applyToCopyLine, applyToDataRow, copyFields, detectorsFor, lineageOf, maskServerText, planColumns,
  type MaskingConfig, type MaskPlan, type StatementLineage,
} from '../masking/index.js';
import type { BackendVerdict, ResultShape, ResultTracker } from './result-tracker.js';
import type { CatalogSnapshot } from './catalog.js';
import { copyRequest, type CopyRequest } from './copy-options.js';
import type { Classification, Statement } from '../policy/classify/index.js';
import { UNCHANGED, putValue } from '../masking/arena.js';
import type { ValueOp } from '../masking/plan.js';

export interface MaskingContext {
  config: MaskingConfig;
  tokenKey: Buffer;
  catalog: () => CatalogSnapshot;
  classify: (sql: string) => Classification;
  /**
   * Masking at the source is on: the tokenization key's SQL form travels in rewritten statements,
   * so these strings are scrubbed from anything that could echo statement text (EXPLAIN, errors).
   */
  secrets?: readonly string[];
}

const SCRUBBED = '(phigate key)';
/** Statements remembered as rewritten at the source (their results are already masked). */
const SOURCE_MASKED_KEPT = 1000;

/** Why the session must end: a result that cannot be masked as the policy asks. */
export class UnmaskableResult extends Error {}

const TABLE_RELKINDS = new Set(['r', 'p', 'f']);
const LINEAGE_CACHE = 500;
const PLAN_CACHE = 500;

/** Everything planColumns reads of a field when no lineage is involved. */
function plainKey(fields: readonly FieldDescription[]): string {
  let key = '';
  for (const f of fields) key += `${f.tableOid}.${f.columnAttr}.${f.typeOid}.${f.format}.${f.name.length}:${f.name}|`;
  return key;
}

export class MaskingLayer {
  private readonly plans = new WeakMap<ResultShape, MaskPlan>();
  /** Plans of results made only of plain table columns, by their fields; valid for one catalog snapshot. */
  private plainPlans = new Map<string, MaskPlan>();
  private plainSnapshot?: CatalogSnapshot;
  private lineages = new Map<string, StatementLineage[]>();
  private lineageSnapshot?: CatalogSnapshot;
  private copy?: { plan: MaskPlan; request: CopyRequest; skipHeader: boolean };
  /** Cursors and SQL-level prepared statements: FETCH and EXECUTE return rows shaped by these. */
  private readonly deferred = new Map<string, StatementLineage>();
  /** Masked columns seen since the last call to takeMasked (for evidence: names, never values). */
  private masked = new Set<string>();
  /** Statement texts rewritten at the source, and cursors/prepared statements defined by one. */
  private readonly sourceMasked = new Map<string, true>();
  private readonly deferredSource = new Set<string>();
  private readonly secretPattern?: RegExp;

  constructor(
    private readonly ctx: MaskingContext,
    private readonly tracker: ResultTracker,
  ) {
    const secrets = (ctx.secrets ?? []).filter((x) => x.length > 0);
    if (secrets.length > 0) this.secretPattern = new RegExp(secrets.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'gi');
  }

  /**
   * The statement's classification, kept for the last text: every result of a multi-statement
   * query asks for the same text, and a long one is not in the classifier's cache (2,000 results
   * would parse an 18 kB text 2,000 times).
   */
  private classify(sql: string): Classification {
    if (this.lastClassified?.sql !== sql) this.lastClassified = { sql, c: this.ctx.classify(sql) };
    return this.lastClassified.c;
  }

  private lastClassified?: { sql: string; c: Classification };

  /** Replaces the tokenization key's SQL form wherever text could have echoed a rewritten statement. */
  scrub(text: string): string {
    return this.secretPattern === undefined ? text : text.replace(this.secretPattern, SCRUBBED);
  }

  /** A statement the session rewrote at the source: its results carry masked values already. */
  private isSourceMasked(sql: string, index: number): boolean {
    if (this.sourceMasked.has(sql)) return true;
    const ref = deferredRef(this.statementAt(sql, index));
    return ref !== undefined && ref.key !== undefined && this.deferredSource.has(ref.key);
  }

  private statementAt(sql: string, index: number): Statement | undefined {
    const c = this.classify(sql);
    return c.ok ? c.statements[index] : undefined;
  }

  /**
   * The bytes to send for one frame, given what the tracker said it is: its raw bytes, a rewritten
   * message, or undefined (a swallowed answer to an injected Describe). Throws UnmaskableResult.
   */
  process(f: BackendFrame, v: BackendVerdict): Buffer | undefined {
    switch (v.kind) {
      case 'swallow':
        return undefined;
      case 'rowDescription': {
        const plan = this.planFor(v.shape);
        if (plan.refuse) throw new UnmaskableResult(plan.refuse.message);
        return f.raw;
      }
      case 'dataRow': {
        const plan = this.rowPlan(v.shape);
        // applyToDataRow returns a complete DataRow message, or null when nothing changed.
        return plan.passthrough ? f.raw : (applyToDataRow(f.body, plan) ?? f.raw);
      }
      case 'copyOut':
        this.startCopy(f.body, v.sql, v.resultIndex);
        return f.raw;
      case 'copyData': {
        const c = this.copy;
        if (!c || c.plan.passthrough) return f.raw;
        if (c.skipHeader) {
          c.skipHeader = false;
          return f.raw;
        }
        const line = applyToCopyLine(f.body, c.plan, c.request.format === 'csv' ? 'csv' : 'text', c.request.options);
        return line === null ? f.raw : message(BackendType.CopyData, line);
      }
      default:
        if (f.type === BackendType.NoticeResponse) return this.secretPattern !== undefined && this.serverLogLine(f.raw) ? undefined : this.maskServerMessage(f.raw);
        if (f.type === BackendType.NotificationResponse) return hideNotificationPayload(f.raw);
        return f.raw;
    }
  }

  /**
   * The plan for the rows of a result; the relay keeps it for a run of DataRows (see
   * maskDataRowInto). Throws UnmaskableResult when the rows cannot be masked.
   */
  rowPlan(shape: ResultShape | undefined): MaskPlan {
    if (!shape) throw new UnmaskableResult('phigate cannot tell which result these rows belong to, so it cannot mask them');
    const plan = this.planFor(shape);
    if (plan.refuse) throw new UnmaskableResult(plan.refuse.message);
    return plan;
  }

  /**
   * ErrorResponse/NoticeResponse text can echo values (`invalid input syntax for type integer:
   * "Ada Lovelace"`, `Key (ssn)=(...)`): masked readers get those fields with values masked.
   */
  maskServerMessage(raw: Buffer, position?: (p: number) => number): Buffer {
    const e = decodeErrorFields(raw.subarray(5));
    if (e instanceof ProtocolError) return raw;
    const detectors = detectorsFor(this.ctx.config);
    const text = (t: string): string => maskServerText(this.scrub(t), detectors);
    const fields: ErrorFields = { ...e, message: text(e.message) };
    if (e.detail !== undefined) fields.detail = text(e.detail);
    if (e.hint !== undefined) fields.hint = text(e.hint);
    if (e.where !== undefined) fields.where = text(e.where);
    if (e.internalQuery !== undefined) fields.internalQuery = '(hidden by phigate)';
    if (e.position !== undefined && position !== undefined) fields.position = position(e.position);
    return raw[0] === BackendType.ErrorResponse ? errorResponse(fields) : noticeResponse(fields);
  }

  /**
   * Server log lines sent to the client (client_min_messages = log or debug): they can quote the
   * rewritten statement (debug_print_*, auto_explain), so masked readers get none.
   */
  private serverLogLine(raw: Buffer): boolean {
    const e = decodeErrorFields(raw.subarray(5));
    return !(e instanceof ProtocolError) && /^(LOG|DEBUG\d?)$/.test(e.severity);
  }

  /** Masked column names seen since the last call. */
  takeMasked(): string[] {
    if (this.masked.size === 0) return [];
    const m = [...this.masked];
    this.masked = new Set();
    return m;
  }

  private startCopy(body: Buffer, sql: string, index: number): void {
    const overall = body[0] ?? 0;
    const count = body.length >= 3 ? body.readInt16BE(1) : 0;
    const formats: number[] = [];
    for (let i = 0; i < count && 3 + i * 2 + 2 <= body.length; i++) formats.push(body.readInt16BE(3 + i * 2));
    this.tracker.setCopyFormats(overall, formats);
    const request = copyRequest(sql, index) ?? { format: overall === 1 ? 'binary' : 'text', header: false, options: {} };
    const plan = planColumns(copyFields(count), this.lineage(sql, index), (o, a) => this.ctx.catalog().resolveAttr(o, a), this.ctx.config, {
      unmasked: false, tokenKey: this.ctx.tokenKey, sourceMasked: this.isSourceMasked(sql, index),
    });
    if ((overall === 1 || request.format === 'binary') && !plan.passthrough) {
      throw new UnmaskableResult('COPY in binary format cannot be masked; use text or CSV format');
    }
    this.noteMasked(plan);
    this.copy = { plan, request, skipHeader: request.header };
  }

  private planFor(shape: ResultShape): MaskPlan {
    let plan = this.plans.get(shape);
    if (plan) return plan;
    const catalog = this.ctx.catalog();
    if (catalog !== this.plainSnapshot) {
      this.plainPlans = new Map();
      this.plainSnapshot = catalog;
    }
    const resolve = (o: number, a: number) => catalog.resolveAttr(o, a);
    // Plain references to ordinary tables decide themselves from RowDescription; lineage (a parse of
    // the statement) is only needed for expressions, views and anything the catalog does not know.
    const needsLineage = shape.fields.some((f) => {
      if (f.tableOid === 0 || f.columnAttr <= 0) return true;
      const src = catalog.resolveAttr(f.tableOid, f.columnAttr);
      return src === undefined || !TABLE_RELKINDS.has(src.relkind);
    });
    // Such a plan depends on the fields alone, so statements that differ only in literals (the
    // usual case for an application or an agent) share it.
    const sourceMasked = this.isSourceMasked(shape.sql, shape.resultIndex);
    const key = needsLineage || sourceMasked ? undefined : plainKey(shape.fields);
    plan = key === undefined ? undefined : this.plainPlans.get(key);
    if (!plan) {
      const lineage = needsLineage && !sourceMasked ? this.lineage(shape.sql, shape.resultIndex) : undefined;
      plan = planColumns(shape.fields, lineage, resolve, this.ctx.config, { unmasked: false, tokenKey: this.ctx.tokenKey, sourceMasked });
      if (sourceMasked && this.secretPattern !== undefined && this.explains(shape.sql, shape.resultIndex)) plan = this.scrubbing(plan);
      if (key !== undefined) {
        this.plainPlans.set(key, plan);
        if (this.plainPlans.size > PLAN_CACHE) this.plainPlans.delete(this.plainPlans.keys().next().value as string);
      }
    }
    this.noteMasked(plan);
    this.plans.set(shape, plan);
    return plan;
  }

  private noteMasked(plan: MaskPlan): void {
    for (const c of plan.columns) if (c.action === 'mask') for (const f of c.from ?? [c.name]) this.masked.add(f);
  }

  /**
   * Called for every forwarded Query/Parse: DECLARE and PREPARE define what a later FETCH or EXECUTE
   * returns, so their lineage is kept by name now (they return no rows themselves).
   */
  noteStatements(sql: string, sourceMasked = false): void {
    if (sourceMasked) {
      this.sourceMasked.delete(sql);
      this.sourceMasked.set(sql, true);
      if (this.sourceMasked.size > SOURCE_MASKED_KEPT) this.sourceMasked.delete(this.sourceMasked.keys().next().value as string);
    }
    const c = this.classify(sql);
    if (!c.ok) return;
    c.statements.forEach((st, i) => {
      const key = definedKey(st);
      if (key === undefined) return;
      if (sourceMasked) this.deferredSource.add(key);
      else this.deferredSource.delete(key);
      const l = this.rawLineage(sql)[i];
      this.deferred.set(key, l?.deferred ?? l ?? this.unknown());
    });
  }

  /** Is result `index` of `sql` an EXPLAIN (whose plan text shows the rewritten statement)? */
  private explains(sql: string, index: number): boolean {
    const st = this.statementAt(sql, index);
    return st === undefined || st.kind === 'explain' || st.explains !== undefined || st.kind === 'execute' || st.kind === 'fetch';
  }

  /** The plan with every text value scrubbed of the key's SQL form first. */
  private scrubbing(plan: MaskPlan): MaskPlan {
    const ops = plan.columns.map((c, i): ValueOp | undefined => {
      const inner = plan.ops[i];
      if (c.action === 'mask') return inner;
      return (b, s, e, arena) => {
        const text = b.toString('utf8', s, e);
        const clean = this.scrub(text);
        if (clean === text) return inner === undefined ? UNCHANGED : inner(b, s, e, arena);
        const buf = Buffer.from(clean, 'utf8');
        const r = inner === undefined ? UNCHANGED : inner(buf, 0, buf.length, arena);
        // UNCHANGED from the inner op means "the scrubbed text as it is", never the original bytes.
        return r === UNCHANGED ? putValue(arena, buf) : r;
      };
    });
    return { ...plan, ops, passthrough: false, tokens: undefined };
  }

  /** Lineage that makes every non-plain column masked whenever a table with masked columns exists. */
  private unknown(): StatementLineage {
    const reads = this.ctx.config.columns.map((r) => ({ schema: r.schema, table: r.table }));
    return { outputs: undefined, unknown: true, reads, opaque: ['(unknown cursor or prepared statement)'], reason: 'defined outside what phigate saw' };
  }

  private lineage(sql: string, index: number): StatementLineage | undefined {
    const ref = deferredRef(this.statementAt(sql, index));
    if (ref !== undefined) return (ref.key === undefined ? undefined : this.deferred.get(ref.key)) ?? this.unknown();
    const l = this.rawLineage(sql)[index];
    // DECLARE/PREPARE: rows come later from FETCH/EXECUTE, shaped by the deferred query.
    return l?.deferred ?? l;
  }

  /**
   * The lineage of `sql` under `snapshot`, traced off the event loop (analysis.ts): kept as if traced
   * here, unless the catalog has moved on since (then it is traced again when needed).
   */
  adoptLineage(sql: string, snapshot: CatalogSnapshot, lineage: StatementLineage[]): void {
    if (snapshot !== this.ctx.catalog()) return;
    if (snapshot !== this.lineageSnapshot) {
      this.lineages = new Map();
      this.lineageSnapshot = snapshot;
    }
    this.lineages.delete(sql);
    this.lineages.set(sql, lineage);
    if (this.lineages.size > LINEAGE_CACHE) this.lineages.delete(this.lineages.keys().next().value as string);
  }

  private rawLineage(sql: string): StatementLineage[] {
    const snapshot = this.ctx.catalog();
    if (snapshot !== this.lineageSnapshot) {
      this.lineages = new Map();
      this.lineageSnapshot = snapshot;
    }
    let all = this.lineages.get(sql);
    if (!all) {
      all = lineageOf(sql, snapshot);
      this.lineages.set(sql, all);
      if (this.lineages.size > LINEAGE_CACHE) this.lineages.delete(this.lineages.keys().next().value as string);
    }
    return all;
  }
}

/** The cursor (`c:name`) or prepared statement (`p:name`) a DECLARE or PREPARE defines. */
function definedKey(st: Statement): string | undefined {
  if (st.kind === 'declare') return st.cursorName === undefined ? undefined : `c:${st.cursorName}`;
  if (st.kind === 'prepare') return st.preparedName === undefined ? undefined : `p:${st.preparedName}`;
  return undefined;
}

/**
 * FETCH, MOVE and EXECUTE return the rows of a cursor or prepared statement defined earlier: its
 * key (undefined for FETCH ALL-like forms without a name); undefined for other statements.
 */
function deferredRef(st: Statement | undefined): { key: string | undefined } | undefined {
  if (st?.kind === 'fetch' || st?.kind === 'move') return { key: st.cursorName === undefined ? undefined : `c:${st.cursorName}` };
  if (st?.kind === 'execute') return { key: st.preparedName === undefined ? undefined : `p:${st.preparedName}` };
  return undefined;
}

/** RowDescription fields for the tracker; a malformed one ends the session as a protocol error. */
export function decodeFields(body: Buffer): FieldDescription[] {
  const f = decodeRowDescription(body);
  if (f instanceof ProtocolError) throw f;
  return f;
}

/** NOTIFY payloads are free text a statement chose (pg_notify(c, ssn)): masked readers get none. */
function hideNotificationPayload(raw: Buffer): Buffer {
  const chanStart = 9;
  const chanEnd = raw.indexOf(0, chanStart);
  if (chanEnd < 0 || raw.length <= chanEnd + 2) return raw;
  const head = raw.subarray(5, chanEnd + 1);
  const payload = Buffer.from('(payload hidden by phigate)\0');
  const out = Buffer.allocUnsafe(5 + head.length + payload.length);
  out[0] = BackendType.NotificationResponse;
  out.writeInt32BE(4 + head.length + payload.length, 1);
  head.copy(out, 5);
  payload.copy(out, 5 + head.length);
  return out;
}

function message(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}
