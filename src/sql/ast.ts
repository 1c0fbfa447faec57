// Typed accessors over libpg-query's JSON parse tree, which is loosely typed and omits default values (false, 0, empty lists).
//
// The walkers read the tree through these accessors rather than through @pgsql/types' interfaces: a
// field the tree omits, or a node of an unexpected type, must come back as "absent" and be handled
// (fail closed), never trusted because a type said it was there. @pgsql/types names the node types.
import type { Node } from '@pgsql/types';

/** Every key of every member of a union (keyof a union is only the keys they share). */
type KeysOfUnion<T> = T extends unknown ? keyof T : never;
/**
 * A node type of PostgreSQL 18's parse tree ('SelectStmt', 'RangeVar', ...), from @pgsql/types; the
 * libpg-query version is pinned to the same PostgreSQL major, so a misspelt tag is a compile error.
 */
export type NodeTag = KeysOfUnion<Node> & string;

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json | undefined;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown): JsonObject | undefined {
  return isObject(v) ? v : undefined;
}

export function list(v: unknown): Json[] {
  return Array.isArray(v) ? (v as Json[]) : [];
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

export function flag(v: unknown): boolean {
  return v === true;
}

/**
 * A wrapped node `{ "SelectStmt": { ... } }` as [type, body]. Node wrappers have exactly one key and
 * it starts with an upper-case letter; plain structs (RangeVar inside `relation`, Alias, ...) do not.
 */
export function node(v: unknown): [NodeTag, JsonObject] | undefined {
  if (!isObject(v)) return undefined;
  let found: [NodeTag, JsonObject] | undefined;
  for (const key in v) {
    if (found !== undefined) return undefined;
    const code = key.charCodeAt(0);
    const body = v[key];
    if (!(code >= 65 && code <= 90) || !isObject(body)) return undefined;
    found = [key as NodeTag, body];
  }
  return found;
}

/** The body of `v` if it is a node of the given type. */
export function nodeOfType(v: unknown, type: NodeTag): JsonObject | undefined {
  const n = node(v);
  return n !== undefined && n[0] === type ? n[1] : undefined;
}

/** `{ "String": { "sval": "x" } }` → "x" (an absent sval is the empty string). */
export function stringNode(v: unknown): string | undefined {
  const body = nodeOfType(v, 'String');
  return body === undefined ? undefined : (str(body.sval) ?? '');
}

/** A List of String nodes (qualified names) → their values; non-strings are skipped. */
export function nameList(v: unknown): string[] {
  const out: string[] = [];
  for (const item of list(v)) {
    const s = stringNode(item);
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** `{ "List": { "items": [...] } }` → items. */
export function listItems(v: unknown): Json[] {
  const body = nodeOfType(v, 'List');
  return body === undefined ? [] : list(body.items);
}

/** A RangeVar struct, wrapped or not (fields typed RangeVar in C are emitted without the wrapper). */
export function rangeVar(v: unknown): JsonObject | undefined {
  const wrapped = nodeOfType(v, 'RangeVar');
  if (wrapped !== undefined) return wrapped;
  return isObject(v) && typeof v.relname === 'string' ? v : undefined;
}

/** Integer value of an A_Const / Integer node, looking through casts; undefined for anything else. */
export function integerConstant(v: unknown): number | undefined {
  const cast = nodeOfType(v, 'TypeCast');
  if (cast !== undefined) return integerConstant(cast.arg);
  const integer = nodeOfType(v, 'Integer');
  if (integer !== undefined) return num(integer.ival) ?? 0;
  const c = nodeOfType(v, 'A_Const');
  if (c === undefined || flag(c.isnull)) return undefined;
  const ival = obj(c.ival);
  if (ival !== undefined) return num(ival.ival) ?? 0;
  const fval = obj(c.fval);
  if (fval !== undefined) {
    const parsed = Number(str(fval.fval));
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}
