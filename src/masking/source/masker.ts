// Masking at the source for one connection: the rewrite (rewrite.ts) behind two caches, so that a
// statement shape seen before costs a lexer pass and a splice. Shapes are the classifier's (the text
// with literals replaced, single DML statements only): the rewrite of one text of a shape is
// replayed on another by token position, since literals never decide what is rewritten and the
// replacement texts carry no literal of the statement.
import type { CatalogSnapshot } from './catalog-snapshot.js';
import type { MaskingConfig } from '../config.js';
import { shapeOf, type Shape } from '../../policy/shape-cache.js';
import { RelationTreatments, type ColumnMasker, type SystemTreatmentFn } from './relations.js';
import { SourceRewriter, type RewriteOptions, type RewriteOutcome, type TextEdit, type TreeCheck } from './rewrite.js';

const MAX_SHAPE_TEXT = 4096;
const CACHE_SIZE = 2000;

/** An edit boundary as a token position: the start or the end of token `token`. */
interface Anchor {
  token: number;
  end: boolean;
}

type ShapePlan =
  | { kind: 'unchanged' }
  | { kind: 'refused'; code: string; message: string }
  | { kind: 'rewritten'; tokens: number; edits: { from: Anchor; to: Anchor; text: string }[]; relations: string[]; columns: string[] };

export interface SourceMaskingOptions {
  config: MaskingConfig;
  masker: ColumnMasker;
  system: SystemTreatmentFn;
  /** Builds the per-statement check (functions, operators) for a snapshot. */
  check?: (snapshot: CatalogSnapshot) => TreeCheck;
}

/** A small LRU over a Map (insertion order). */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly size: number) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.map.set(k, v);
    if (this.map.size > this.size) this.map.delete(this.map.keys().next().value as string);
  }
}

export class SourceMasking {
  private snapshot?: CatalogSnapshot;
  private rewriter?: SourceRewriter;
  private exact = new Lru<RewriteOutcome>(CACHE_SIZE);
  private shapes = new Lru<ShapePlan>(CACHE_SIZE);
  hits = 0;
  misses = 0;

  constructor(readonly opts: SourceMaskingOptions) {}

  /** The statement as it must reach the database for a masked reader, or why it may not. */
  rewrite(sql: string, snapshot: CatalogSnapshot, options: RewriteOptions = {}): RewriteOutcome {
    const rewriter = this.rewriterFor(snapshot);
    const shape = sql.length <= MAX_SHAPE_TEXT ? shapeOf(sql) : undefined;
    // Rewrites without plain outputs are other rewrites of the same text.
    const key = shape?.key === undefined ? undefined : options.plainOutputs === false ? `\u0000computed\u0000${shape.key}` : shape.key;
    if (shape !== undefined && key !== undefined) {
      const plan = this.shapes.get(key);
      if (plan !== undefined) {
        const replayed = replay(plan, sql, shape);
        if (replayed !== undefined) {
          this.hits++;
          return replayed;
        }
      }
    } else {
      const hit = this.exact.get(options.plainOutputs === false ? `\u0000computed\u0000${sql}` : sql);
      if (hit !== undefined) {
        this.hits++;
        return hit;
      }
    }
    this.misses++;
    const outcome = rewriter.rewrite(sql, options);
    // What depends on the snapshot's age (unknown names) is never kept.
    if (outcome.kind === 'unknown' || options.allowUnknown) return outcome;
    if (shape !== undefined && key !== undefined) {
      const plan = planOf(outcome, shape);
      if (plan !== undefined) this.shapes.set(key, plan);
    } else {
      this.exact.set(options.plainOutputs === false ? `\u0000computed\u0000${sql}` : sql, outcome);
    }
    return outcome;
  }

  private rewriterFor(snapshot: CatalogSnapshot): SourceRewriter {
    if (snapshot !== this.snapshot || this.rewriter === undefined) {
      this.snapshot = snapshot;
      const check = this.opts.check?.(snapshot);
      this.rewriter = new SourceRewriter(new RelationTreatments(snapshot, this.opts.config, this.opts.masker, this.opts.system, check), check);
      this.exact = new Lru(CACHE_SIZE);
      this.shapes = new Lru(CACHE_SIZE);
    }
    return this.rewriter;
  }
}

function anchorOf(shape: Shape, offset: number, end: boolean): Anchor | undefined {
  // Edits start at a token's start and end at a token's end, or (a dropped qualifier) at a token's start.
  const { starts, ends } = shape;
  for (let i = 0; i < starts.length; i++) {
    if (!end && starts[i] === offset) return { token: i, end: false };
    if (end && ends[i] === offset) return { token: i, end: true };
    if (end && starts[i] === offset) return { token: i, end: false };
    if (starts[i]! > offset) break;
  }
  return undefined;
}

function planOf(outcome: RewriteOutcome, shape: Shape): ShapePlan | undefined {
  if (outcome.kind === 'unchanged') return { kind: 'unchanged' };
  if (outcome.kind === 'refused') return { kind: 'refused', code: outcome.code, message: outcome.message };
  if (outcome.kind !== 'rewritten') return undefined;
  const edits: { from: Anchor; to: Anchor; text: string }[] = [];
  for (const e of outcome.edits) {
    if (e.copied) return undefined;
    const from = anchorOf(shape, e.from, false);
    const to = anchorOf(shape, e.to, true);
    if (from === undefined || to === undefined) return undefined;
    edits.push({ from, to, text: e.text });
  }
  return { kind: 'rewritten', tokens: shape.starts.length, edits, relations: outcome.relations, columns: outcome.columns };
}

function at(shape: Shape, a: Anchor): number {
  return a.end ? shape.ends[a.token]! : shape.starts[a.token]!;
}

function replay(plan: ShapePlan, sql: string, shape: Shape): RewriteOutcome | undefined {
  if (plan.kind === 'unchanged') return { kind: 'unchanged' };
  if (plan.kind === 'refused') return { kind: 'refused', code: plan.code, message: plan.message };
  if (shape.starts.length !== plan.tokens) return undefined;
  let out = '';
  let pos = 0;
  const edits: TextEdit[] = [];
  for (const e of plan.edits) {
    const from = at(shape, e.from);
    const to = at(shape, e.to);
    out += sql.slice(pos, from) + e.text;
    edits.push({ from, to, text: e.text });
    pos = to;
  }
  out += sql.slice(pos);
  return { kind: 'rewritten', sql: out, edits, relations: plan.relations, columns: plan.columns };
}

/**
 * Maps a 1-based character position in the rewritten text (an ErrorResponse's P field) back to
 * the client's text: positions inside a replaced span point at the span's start.
 */
export function originalPosition(edits: readonly TextEdit[], position: number): number {
  const p = position - 1;
  let delta = 0;
  for (const e of edits) {
    const newFrom = e.from + delta;
    const newTo = newFrom + e.text.length;
    if (p < newFrom) break;
    if (p < newTo) return e.from + 1;
    delta += e.text.length - (e.to - e.from);
  }
  return p - delta + 1;
}
