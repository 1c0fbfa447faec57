// Content detection inside binary-format values: text-like scalars, arrays and records in PostgreSQL's send/recv layouts, rewritten with their lengths fixed up.
import type { DetectorSet } from './detectors.js';
import { TypeKind, detectable, typeKind } from './pgtypes.js';

/** Binary kinds detectors can read: text types send their text bytes, jsonb a version byte first. */
export function binaryInspectable(kind: TypeKind): boolean {
  switch (kind) {
    case TypeKind.Text:
    case TypeKind.Json:
    case TypeKind.Jsonb:
    case TypeKind.Xml:
    case TypeKind.TextArray:
    case TypeKind.Record:
      return true;
    default:
      return false;
  }
}

/** Marker for an element whose binary form cannot be read: it is replaced by NULL (fail closed). */
const UNREADABLE = null;

/**
 * Scans one binary value of `kind`. Returns new bytes, undefined when unchanged, null when the value
 * must become NULL (malformed or nested too deeply to read: fail closed). Elements of arrays and
 * fields of records whose type is text-like but not readable in binary become NULL.
 */
export function scanBinary(value: Buffer, kind: TypeKind, detectors: DetectorSet, depth = 0): Buffer | null | undefined {
  switch (kind) {
    case TypeKind.Text:
    case TypeKind.Json:
    case TypeKind.Xml:
      return detectors.scan(value, kind);
    case TypeKind.Jsonb: {
      if (value.length === 0) return undefined;
      const r = detectors.scan(value.subarray(1), kind);
      return r === undefined ? undefined : Buffer.concat([value.subarray(0, 1), r]);
    }
    case TypeKind.TextArray:
      return depth > 8 ? null : scanArray(value, detectors, depth);
    case TypeKind.Record:
      return depth > 8 ? null : scanRecord(value, detectors, depth);
    default:
      return undefined;
  }
}

function elementResult(bytes: Buffer, oid: number, detectors: DetectorSet, depth: number): Buffer | null | undefined {
  const kind = typeKind(oid);
  if (!detectable(kind)) return undefined;
  if (!binaryInspectable(kind)) return UNREADABLE;
  return scanBinary(bytes, kind, detectors, depth + 1);
}

/** Array: ndim, hasnull flag, element OID, ndim x (size, lower bound), then (length, bytes) per element. */
function scanArray(value: Buffer, detectors: DetectorSet, depth: number): Buffer | null | undefined {
  if (value.length < 12) return null;
  const ndim = value.readInt32BE(0);
  const elemOid = value.readUInt32BE(8);
  if (ndim < 0 || ndim > 6) return null;
  let off = 12;
  let count = ndim === 0 ? 0 : 1;
  for (let d = 0; d < ndim; d++) {
    if (off + 8 > value.length) return null;
    count *= value.readInt32BE(off);
    off += 8;
  }
  const parts: Buffer[] = [value.subarray(0, off)];
  let changed = false;
  let hasNull = value.readInt32BE(4) !== 0;
  for (let i = 0; i < count; i++) {
    if (off + 4 > value.length) return null;
    const len = value.readInt32BE(off);
    off += 4;
    if (len < 0) {
      parts.push(lengthPrefix(-1));
      continue;
    }
    if (off + len > value.length) return null;
    const elem = value.subarray(off, off + len);
    off += len;
    const r = elementResult(elem, elemOid, detectors, depth);
    if (r === undefined) {
      parts.push(lengthPrefix(len), elem);
    } else if (r === null) {
      changed = true;
      hasNull = true;
      parts.push(lengthPrefix(-1));
    } else {
      changed = true;
      parts.push(lengthPrefix(r.length), r);
    }
  }
  if (!changed) return undefined;
  const out = Buffer.concat(parts);
  out.writeInt32BE(hasNull ? 1 : 0, 4);
  return out;
}

/** Record: field count, then (type OID, length, bytes) per field. */
function scanRecord(value: Buffer, detectors: DetectorSet, depth: number): Buffer | null | undefined {
  if (value.length < 4) return null;
  const n = value.readInt32BE(0);
  if (n < 0 || n > 1664) return null;
  let off = 4;
  const parts: Buffer[] = [value.subarray(0, 4)];
  let changed = false;
  for (let i = 0; i < n; i++) {
    if (off + 8 > value.length) return null;
    const oid = value.readUInt32BE(off);
    const len = value.readInt32BE(off + 4);
    const head = value.subarray(off, off + 4);
    off += 8;
    if (len < 0) {
      parts.push(head, lengthPrefix(-1));
      continue;
    }
    if (off + len > value.length) return null;
    const field = value.subarray(off, off + len);
    off += len;
    const r = elementResult(field, oid, detectors, depth);
    if (r === undefined) parts.push(head, lengthPrefix(len), field);
    else {
      changed = true;
      parts.push(head, ...(r === null ? [lengthPrefix(-1)] : [lengthPrefix(r.length), r]));
    }
  }
  return changed ? Buffer.concat(parts) : undefined;
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}
