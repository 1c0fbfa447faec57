// COPY TO STDOUT row formats (text and CSV): split one CopyData row into field values and write it back, with PostgreSQL's escaping and quoting rules.
//
// PostgreSQL sends one CopyData message per row in text and CSV format, newline included (a CSV
// field may itself hold newlines inside quotes), so a "line" here is one such message.

export interface CopyOptions {
  /** Field separator: tab in text format, comma in CSV (COPY's DELIMITER). */
  delimiter?: string;
  /** The NULL marker: \N in text format, the empty unquoted string in CSV (COPY's NULL). */
  null?: string;
  /** CSV only: QUOTE (default ") and ESCAPE (default: the quote character). */
  quote?: string;
  escape?: string;
}

export interface CopyField {
  /** Decoded value bytes, or null for the NULL marker. */
  value: Buffer | null;
  /** CSV: the field was quoted (kept quoted when rewritten, as FORCE_QUOTE would). */
  quoted: boolean;
}

export interface CopyRow {
  fields: CopyField[];
  /** The line ending as sent ("\n" or "\r\n"; empty if none). */
  eol: string;
}

function byteOf(s: string | undefined, fallback: number): number {
  return s === undefined || s.length === 0 ? fallback : s.charCodeAt(0);
}

function splitEol(line: Buffer): [Buffer, string] {
  let end = line.length;
  if (end > 0 && line[end - 1] === 0x0a) {
    end--;
    if (end > 0 && line[end - 1] === 0x0d) return [line.subarray(0, end - 1), '\r\n'];
    return [line.subarray(0, end), '\n'];
  }
  return [line, ''];
}

// ---------------------------------------------------------------------------------------------
// Text format

const TEXT_ESCAPES: Record<number, number> = { 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x76: 0x0b };

function decodeTextField(raw: Buffer): Buffer {
  if (raw.indexOf(0x5c) < 0) return raw;
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number;
    if (c !== 0x5c || i + 1 >= raw.length) {
      out.push(c);
      continue;
    }
    const n = raw[++i] as number;
    const mapped = TEXT_ESCAPES[n];
    if (mapped !== undefined) out.push(mapped);
    else if (n >= 0x30 && n <= 0x37) {
      let v = n - 0x30;
      for (let k = 0; k < 2 && i + 1 < raw.length && (raw[i + 1] as number) >= 0x30 && (raw[i + 1] as number) <= 0x37; k++) v = v * 8 + ((raw[++i] as number) - 0x30);
      out.push(v & 0xff);
    } else if (n === 0x78 && i + 1 < raw.length && isHex(raw[i + 1] as number)) {
      let v = hexVal(raw[++i] as number);
      if (i + 1 < raw.length && isHex(raw[i + 1] as number)) v = v * 16 + hexVal(raw[++i] as number);
      out.push(v);
    } else out.push(n);
  }
  return Buffer.from(out);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
function hexVal(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10;
}

function encodeTextField(value: Buffer, delimiter: number): Buffer {
  let needs = false;
  for (const c of value) {
    if (c === 0x5c || c === delimiter || c < 0x20) {
      needs = true;
      break;
    }
  }
  if (!needs) return value;
  const out: number[] = [];
  for (const c of value) {
    if (c === 0x5c) out.push(0x5c, 0x5c);
    else if (c === 0x0a) out.push(0x5c, 0x6e);
    else if (c === 0x0d) out.push(0x5c, 0x72);
    else if (c === 0x09) out.push(0x5c, 0x74);
    else if (c === 0x08) out.push(0x5c, 0x62);
    else if (c === 0x0c) out.push(0x5c, 0x66);
    else if (c === 0x0b) out.push(0x5c, 0x76);
    else if (c === delimiter) out.push(0x5c, c);
    else out.push(c);
  }
  return Buffer.from(out);
}

export function parseTextRow(line: Buffer, opts: CopyOptions = {}): CopyRow {
  const [body, eol] = splitEol(line);
  const delimiter = byteOf(opts.delimiter, 0x09);
  const nullMarker = Buffer.from(opts.null ?? '\\N', 'utf8');
  const fields: CopyField[] = [];
  let start = 0;
  for (let i = 0; i <= body.length; i++) {
    if (i < body.length) {
      const c = body[i] as number;
      // A backslash escapes the next byte, which may be the delimiter itself.
      if (c === 0x5c) {
        i++;
        continue;
      }
      if (c !== delimiter) continue;
    }
    const raw = body.subarray(start, i);
    fields.push({ value: raw.equals(nullMarker) ? null : decodeTextField(raw), quoted: false });
    start = i + 1;
  }
  return { fields, eol };
}

export function writeTextRow(row: CopyRow, opts: CopyOptions = {}): Buffer {
  const delimiter = byteOf(opts.delimiter, 0x09);
  const nullMarker = Buffer.from(opts.null ?? '\\N', 'utf8');
  const parts: Buffer[] = [];
  row.fields.forEach((f, i) => {
    if (i > 0) parts.push(Buffer.from([delimiter]));
    parts.push(f.value === null ? nullMarker : encodeTextField(f.value, delimiter));
  });
  parts.push(Buffer.from(row.eol, 'latin1'));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// CSV

/** Undefined when the row is malformed (an unterminated quote). */
export function parseCsvRow(line: Buffer, opts: CopyOptions = {}): CopyRow | undefined {
  const delimiter = byteOf(opts.delimiter, 0x2c);
  const quote = byteOf(opts.quote, 0x22);
  const escape = byteOf(opts.escape, quote);
  const nullMarker = Buffer.from(opts.null ?? '', 'utf8');
  const fields: CopyField[] = [];
  let i = 0;
  const n = line.length;
  let eol = '';
  for (;;) {
    if (i < n && line[i] === quote) {
      const bytes: number[] = [];
      i++;
      let closed = false;
      while (i < n) {
        const c = line[i] as number;
        if (c === escape && i + 1 < n && (line[i + 1] === quote || line[i + 1] === escape) && (escape !== quote || line[i + 1] === quote)) {
          bytes.push(line[i + 1] as number);
          i += 2;
          continue;
        }
        if (c === quote) {
          closed = true;
          i++;
          break;
        }
        bytes.push(c);
        i++;
      }
      if (!closed) return undefined;
      fields.push({ value: Buffer.from(bytes), quoted: true });
    } else {
      let j = i;
      while (j < n && line[j] !== delimiter && line[j] !== 0x0a && line[j] !== 0x0d) j++;
      const raw = line.subarray(i, j);
      fields.push({ value: raw.equals(nullMarker) ? null : Buffer.from(raw), quoted: false });
      i = j;
    }
    if (i >= n) break;
    const c = line[i] as number;
    if (c === delimiter) {
      i++;
      continue;
    }
    const rest = line.subarray(i).toString('latin1');
    if (rest === '\n' || rest === '\r\n') {
      eol = rest;
      break;
    }
    return undefined;
  }
  return { fields, eol };
}

export function writeCsvRow(row: CopyRow, opts: CopyOptions = {}): Buffer {
  const delimiter = byteOf(opts.delimiter, 0x2c);
  const quote = byteOf(opts.quote, 0x22);
  const escape = byteOf(opts.escape, quote);
  const nullMarker = Buffer.from(opts.null ?? '', 'utf8');
  const parts: Buffer[] = [];
  row.fields.forEach((f, i) => {
    if (i > 0) parts.push(Buffer.from([delimiter]));
    if (f.value === null) {
      parts.push(nullMarker);
      return;
    }
    const v = f.value;
    let mustQuote = f.quoted || v.equals(nullMarker) || v.length === 0;
    if (!mustQuote) {
      for (const c of v) {
        if (c === delimiter || c === quote || c === escape || c === 0x0a || c === 0x0d) {
          mustQuote = true;
          break;
        }
      }
    }
    if (!mustQuote) {
      parts.push(v);
      return;
    }
    const out: number[] = [quote];
    for (const c of v) {
      if (c === quote || c === escape) out.push(escape);
      out.push(c);
    }
    out.push(quote);
    parts.push(Buffer.from(out));
  });
  parts.push(Buffer.from(row.eol, 'latin1'));
  return Buffer.concat(parts);
}
