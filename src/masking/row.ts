// Applies a MaskPlan to result rows on the hot path: DataRow bodies (text and binary format) and COPY TO STDOUT rows (text and CSV).
//
// Unchanged rows are reported as null so the session forwards the original bytes; in a changed row
// every column without a rewrite keeps its exact bytes. Nothing here throws: a value whose rewrite
// fails becomes NULL, and a row that does not match its plan (wrong column count, truncated) comes
// back with every column NULL, because forwarding it could leak and dropping it would desynchronise
// the client.
import type { MaskPlan, ValueOp } from './plan.js';
import { parseCsvRow, parseTextRow, writeCsvRow, writeTextRow, type CopyOptions, type CopyRow } from './copy-format.js';

export type { CopyOptions } from './copy-format.js';

function run(op: ValueOp, value: Buffer): Buffer | null | undefined {
  try {
    const r = op(value);
    return r === value ? undefined : r;
  } catch {
    return null;
  }
}

// Reused across calls (the row path is synchronous): positions and replacements of changed columns.
let changedIdx = new Int32Array(64);
let changedVal: (Buffer | null)[] = [];

function allNullRow(n: number): Buffer {
  const b = Buffer.allocUnsafe(7 + 4 * n);
  b[0] = 0x44;
  b.writeInt32BE(6 + 4 * n, 1);
  b.writeUInt16BE(n & 0xffff, 5);
  for (let i = 0; i < n; i++) b.writeInt32BE(-1, 7 + 4 * i);
  return b;
}

/**
 * Masks one DataRow. `body` is the message body (after the type byte and length). Returns null when
 * nothing changed (forward the original message), otherwise a complete DataRow message ('D',
 * length, body) to send in its place.
 */
export function applyToDataRow(body: Buffer, plan: MaskPlan): Buffer | null {
  if (plan.passthrough) return null;
  const ops = plan.ops;
  const n = ops.length;
  if (body.length < 2 || body.readUInt16BE(0) !== n) return allNullRow(n);
  if (changedIdx.length < n) changedIdx = new Int32Array(n * 2);
  let changes = 0;
  let delta = 0;
  let off = 2;
  const end = body.length;
  for (let i = 0; i < n; i++) {
    if (off + 4 > end) return allNullRow(n);
    const len = body.readInt32BE(off);
    off += 4;
    if (len < 0) continue;
    if (off + len > end) return allNullRow(n);
    const op = ops[i];
    if (op !== undefined) {
      const r = run(op, body.subarray(off, off + len));
      if (r !== undefined) {
        changedIdx[changes] = i;
        changedVal[changes] = r;
        changes++;
        delta += (r === null ? 0 : r.length) - len;
      }
    }
    off += len;
  }
  if (off !== end) return allNullRow(n);
  if (changes === 0) return null;

  const out = Buffer.allocUnsafe(5 + end + delta);
  out[0] = 0x44;
  out.writeInt32BE(4 + end + delta, 1);
  out.writeUInt16BE(n, 5);
  let src = 2;
  let dst = 7;
  let next = 0;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(src);
    const valueLen = len < 0 ? 0 : len;
    if (next < changes && changedIdx[next] === i) {
      const v = changedVal[next] as Buffer | null;
      changedVal[next] = null;
      next++;
      if (v === null) {
        out.writeInt32BE(-1, dst);
        dst += 4;
      } else {
        out.writeInt32BE(v.length, dst);
        v.copy(out, dst + 4);
        dst += 4 + v.length;
      }
    } else {
      body.copy(out, dst, src, src + 4 + valueLen);
      dst += 4 + valueLen;
    }
    src += 4 + valueLen;
  }
  if (changedVal.length > 1024) changedVal = [];
  return out;
}

function maskCopyRow(row: CopyRow, plan: MaskPlan): boolean {
  let changed = false;
  row.fields.forEach((f, i) => {
    const op = plan.ops[i];
    if (op === undefined || f.value === null) return;
    const r = run(op, f.value);
    if (r === undefined) return;
    f.value = r;
    changed = true;
  });
  return changed;
}

/**
 * Masks one COPY TO STDOUT row (one CopyData body, newline included) in text or CSV format, with
 * the statement's COPY options (delimiter, null, quote, escape). Skip the header line of
 * `HEADER true` yourself: it carries column names, not values. Returns null when unchanged; a row
 * that cannot be parsed, or whose field count differs from the plan, comes back with every field
 * NULL. Binary COPY is not handled here: refuse it unless the plan is passthrough.
 */
export function applyToCopyLine(line: Buffer, plan: MaskPlan, format: 'text' | 'csv', options: CopyOptions = {}): Buffer | null {
  if (plan.passthrough) return null;
  const n = plan.ops.length;
  let row: CopyRow | undefined;
  try {
    row = format === 'csv' ? parseCsvRow(line, options) : parseTextRow(line, options);
  } catch {
    row = undefined;
  }
  const write = format === 'csv' ? writeCsvRow : writeTextRow;
  if (row === undefined || row.fields.length !== n) {
    const eol = line.length > 0 && line[line.length - 1] === 0x0a ? '\n' : '';
    return write({ fields: Array.from({ length: n }, () => ({ value: null, quoted: false })), eol }, options);
  }
  if (!maskCopyRow(row, plan)) return null;
  return write(row, options);
}
