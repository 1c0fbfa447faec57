// Applies a MaskPlan to result rows on the hot path: DataRow bodies (text and binary format) and COPY TO STDOUT rows (text and CSV).
//
// Unchanged rows are reported as null so the session forwards the original bytes; in a changed row
// every column without a rewrite keeps its exact bytes. Nothing here throws: a value whose rewrite
// fails becomes NULL, and a row that does not match its plan (wrong column count, truncated) comes
// back with every column NULL, because forwarding it could leak and dropping it would desynchronise
// the client.
import type { ByteSink } from '../pg/byte-sink.js';
import { BackendType } from '../pg/message-types.js';
import type { MaskPlan, ValueOp } from './plan.js';
import { NULL_VALUE, UNCHANGED, ValueArena, type ValueOut } from './arena.js';
import { parseCsvRow, parseTextRow, writeCsvRow, writeTextRow, type CopyOptions, type CopyRow } from './copy-format.js';

export type { CopyOptions } from './copy-format.js';

/**
 * The op's result length (its bytes are at out.len), NULL_VALUE or UNCHANGED; an op that throws
 * gives NULL, never the raw value. Ops write past out.len without moving it: the caller does.
 */
function run(op: ValueOp, buf: Buffer, start: number, end: number, out: ValueOut = arena): number {
  try {
    return op(buf, start, end, out);
  } catch {
    return NULL_VALUE;
  }
}

// Reused across calls (the row path is synchronous): where each changed column starts (its length
// field), its old length, and where its replacement is in the arena (offset, length or NULL_VALUE).
let changedPos = new Int32Array(64);
let changedLen = new Int32Array(64);
let changedAt = new Int32Array(64);
let changedNew = new Int32Array(64);
const arena = new ValueArena();

function allNullRow(n: number): Buffer {
  const b = Buffer.allocUnsafe(7 + 4 * n);
  b[0] = BackendType.DataRow;
  b.writeInt32BE(6 + 4 * n, 1);
  b.writeUInt16BE(n & 0xffff, 5);
  for (let i = 0; i < n; i++) b.writeInt32BE(-1, 7 + 4 * i);
  return b;
}

/** Buffer.copy crosses into C++; short runs are cheaper copied here. */
function copyRun(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const n = to - from;
  if (n > 24) src.copy(dst, at, from, to);
  else for (let i = 0; i < n; i++) dst[at + i] = src[from + i] as number;
  return at + n;
}

// How many bytes longer (or shorter) the row maskColumns last looked at becomes.
let rowDelta = 0;

/**
 * Runs the plan over the DataRow body at buf[start, end) and leaves each changed column in the
 * scratch arrays. Returns the number of changes (0: forward the original) with the size change in
 * `rowDelta`, or -1 when the row does not match the plan.
 */
function maskColumns(buf: Buffer, start: number, end: number, ops: readonly (ValueOp | undefined)[]): number {
  const n = ops.length;
  if (end - start < 2 || buf.readUInt16BE(start) !== n) return -1;
  if (changedPos.length < n) {
    changedPos = new Int32Array(n * 2);
    changedLen = new Int32Array(n * 2);
    changedAt = new Int32Array(n * 2);
    changedNew = new Int32Array(n * 2);
  }
  arena.len = 0;
  let changes = 0;
  let delta = 0;
  let off = start + 2;
  for (let i = 0; i < n; i++) {
    if (off + 4 > end) return -1;
    const len = ((buf[off] as number) << 24) | ((buf[off + 1] as number) << 16) | ((buf[off + 2] as number) << 8) | (buf[off + 3] as number);
    if (len < 0) {
      off += 4;
      continue;
    }
    if (off + 4 + len > end) return -1;
    const op = ops[i];
    if (op !== undefined) {
      const at = arena.len;
      const r = run(op, buf, off + 4, off + 4 + len);
      if (r !== UNCHANGED) {
        changedPos[changes] = off;
        changedLen[changes] = len;
        changedAt[changes] = at;
        changedNew[changes] = r;
        changes++;
        if (r >= 0) arena.len = at + r;
        delta += (r >= 0 ? r : 0) - len;
      }
    }
    off += 4 + len;
  }
  if (off !== end) return -1;
  rowDelta = delta;
  return changes;
}

/** Writes the DataRow message for the body at buf[start, end) with `changes` columns replaced, at out[at..]. */
function writeRow(buf: Buffer, start: number, end: number, changes: number, out: Buffer, at: number): void {
  const bodyLen = end - start + rowDelta;
  out[at] = BackendType.DataRow;
  const total = 4 + bodyLen;
  out[at + 1] = total >>> 24;
  out[at + 2] = (total >>> 16) & 0xff;
  out[at + 3] = (total >>> 8) & 0xff;
  out[at + 4] = total & 0xff;
  let src = start;
  let dst = at + 5;
  for (let k = 0; k < changes; k++) {
    const pos = changedPos[k] as number;
    dst = copyRun(buf, src, pos, out, dst);
    const len = changedNew[k] as number;
    out[dst] = len >>> 24;
    out[dst + 1] = (len >>> 16) & 0xff;
    out[dst + 2] = (len >>> 8) & 0xff;
    out[dst + 3] = len & 0xff;
    dst += 4;
    if (len > 0) {
      const at = changedAt[k] as number;
      dst = copyRun(arena.buf, at, at + len, out, dst);
    }
    src = pos + 4 + (changedLen[k] as number);
  }
  copyRun(buf, src, end, out, dst);
}

/**
 * Masks one DataRow. `body` is the message body (after the type byte and length). Returns null when
 * nothing changed (forward the original message), otherwise a complete DataRow message ('D',
 * length, body) to send in its place.
 */
export function applyToDataRow(body: Buffer, plan: MaskPlan): Buffer | null {
  if (plan.passthrough) return null;
  const changes = maskColumns(body, 0, body.length, plan.ops);
  if (changes < 0) return allNullRow(plan.ops.length);
  if (changes === 0) return null;
  const out = Buffer.allocUnsafe(5 + body.length + rowDelta);
  writeRow(body, 0, body.length, changes, out, 0);
  return out;
}

// The rows whose tokens were last computed ahead: which buffer, from where to where.
let aheadBuf: Buffer | undefined;
let aheadFrom = 0;
let aheadEnd = 0;
const MAX_AHEAD = 1024;
const aheadStarts = new Int32Array(MAX_AHEAD);
const aheadEnds = new Int32Array(MAX_AHEAD);

/** The big-endian int32 at b[at] (callers check the bounds). */
function int32(b: Buffer, at: number): number {
  return ((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number);
}

/**
 * Collects the text-tokenized values of the complete DataRows from msg[from] on (up to MAX_AHEAD
 * values) and has their tokens computed in one batch, four at a time.
 */
function prepareTokens(msg: Buffer, from: number, tokens: NonNullable<MaskPlan['tokens']>): void {
  const cols = tokens.columns;
  const size = msg.length;
  let count = 0;
  let off = from;
  while (off + 7 <= size && msg[off] === BackendType.DataRow && count + cols.length <= MAX_AHEAD) {
    const end = off + 1 + int32(msg, off + 1);
    if (end > size || end < off + 7) break;
    const n = ((msg[off + 5] as number) << 8) | (msg[off + 6] as number);
    let p = off + 7;
    let next = 0;
    for (let i = 0; i < n && p + 4 <= end; i++) {
      const len = int32(msg, p);
      p += 4;
      if (i === cols[next]) {
        next++;
        if (len >= 0 && p + len <= end) {
          aheadStarts[count] = p;
          aheadEnds[count] = p + len;
          count++;
        }
        if (next === cols.length) break;
      }
      if (len > 0) p += len;
    }
    off = end;
  }
  aheadBuf = msg;
  aheadFrom = from;
  aheadEnd = off;
  tokens.tokenizer.prepare(msg, aheadStarts, aheadEnds, count);
}

/**
 * The relay's form of applyToDataRow: masks the DataRow message at msg[start, end) (type byte
 * included) and appends what the client gets to `sink`, the original bytes when nothing changed.
 * Tokens of the rows that follow in `msg` are computed ahead in batches.
 */
export function maskDataRowInto(msg: Buffer, start: number, end: number, plan: MaskPlan, sink: ByteSink): void {
  if (plan.tokens !== undefined && (msg !== aheadBuf || start >= aheadEnd || start < aheadFrom)) prepareTokens(msg, start, plan.tokens);
  if (plan.masks) {
    maskRowInPlace(msg, start, end, plan, sink);
    return;
  }
  const changes = plan.passthrough ? 0 : maskColumns(msg, start + 5, end, plan.ops);
  if (changes === 0) {
    sink.append(msg, start, end);
    return;
  }
  if (changes < 0) {
    sink.append(allNullRow(plan.ops.length));
    return;
  }
  const size = end - start + rowDelta;
  const at = sink.reserve(size);
  writeRow(msg, start + 5, end, changes, sink.buf, at);
  sink.commit(size);
}

function writeLength(b: Buffer, at: number, n: number): void {
  b[at] = n >>> 24;
  b[at + 1] = (n >>> 16) & 0xff;
  b[at + 2] = (n >>> 8) & 0xff;
  b[at + 3] = n & 0xff;
}

/**
 * maskDataRowInto for plans that rewrite columns with a strategy (nearly every row changes): one
 * pass, each column written straight into the sink and each op writing its value in place, instead
 * of masking into scratch space first and copying the row together after. A row that changed
 * nothing after all is taken back and forwarded as it was.
 */
function maskRowInPlace(msg: Buffer, start: number, end: number, plan: MaskPlan, sink: ByteSink): void {
  const ops = plan.ops;
  const n = ops.length;
  const base = sink.reserve(end - start);
  let out = sink.buf;
  let changed = false;
  let ok = end - start >= 7 && msg.readUInt16BE(start + 5) === n;
  out[base] = BackendType.DataRow;
  out[base + 5] = msg[start + 5] as number;
  out[base + 6] = msg[start + 6] as number;
  sink.len = base + 7;
  let off = start + 7;
  for (let i = 0; ok && i < n; i++) {
    if (off + 4 > end) {
      ok = false;
      break;
    }
    const len = ((msg[off] as number) << 24) | ((msg[off + 1] as number) << 16) | ((msg[off + 2] as number) << 8) | (msg[off + 3] as number);
    const op = ops[i];
    if (len >= 0 && off + 4 + len > end) {
      ok = false;
      break;
    }
    if (op === undefined || len < 0) {
      const size = 4 + Math.max(len, 0);
      if (sink.len + size > out.length) out = sink.room(size);
      copyRun(msg, off, off + size, out, sink.len);
      sink.len += size;
      off += size;
      continue;
    }
    if (sink.len + 4 > out.length) out = sink.room(4);
    const at = sink.len;
    sink.len = at + 4;
    const r = run(op, msg, off + 4, off + 4 + len, sink);
    out = sink.buf;
    if (r === UNCHANGED) {
      if (sink.len + len > out.length) out = sink.room(len);
      copyRun(msg, off + 4, off + 4 + len, out, sink.len);
      writeLength(out, at, len);
      sink.len += len;
    } else {
      changed = true;
      writeLength(out, at, r);
      if (r > 0) sink.len += r;
    }
    off += 4 + len;
  }
  if (!ok || off !== end || !changed) {
    sink.len = base;
    if (ok && off === end) sink.append(msg, start, end);
    else sink.append(allNullRow(n));
    return;
  }
  writeLength(sink.buf, base + 1, sink.len - base - 1);
}

function maskCopyRow(row: CopyRow, plan: MaskPlan): boolean {
  let changed = false;
  row.fields.forEach((f, i) => {
    const op = plan.ops[i];
    if (op === undefined || f.value === null) return;
    arena.len = 0;
    const r = run(op, f.value, 0, f.value.length);
    if (r === UNCHANGED) return;
    // Copied out: the arena is reused by the next value.
    f.value = r === NULL_VALUE ? null : Buffer.from(arena.buf.subarray(0, r));
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
