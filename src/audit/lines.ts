// Reading newline-delimited files in large chunks without holding them in memory: the log can be
// hundreds of megabytes. Lines come back as byte slices with their file offsets, because hashes are
// over bytes and the index points at offsets.
import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';

export interface Line {
  /** Byte offset of the line's first byte. */
  offset: number;
  /** The line without its newline. */
  bytes: Buffer;
  /** False for a final line that has no newline (a torn write). */
  complete: boolean;
}

const CHUNK = 1 << 20;

/**
 * Splits a stream of chunks into lines, carrying a partial line across chunks. `copy` is for
 * callers that reuse the chunk's memory for the next read while a consumer may still hold a line.
 */
class LineSplitter {
  private carry: Buffer = Buffer.alloc(0);

  constructor(private lineStart: number) {}

  *push(chunk: Buffer, copy: boolean): Generator<Line> {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(10, from);
      if (nl === -1) break;
      const piece = chunk.subarray(from, nl);
      const bytes = this.carry.length > 0 ? Buffer.concat([this.carry, piece]) : copy ? Buffer.from(piece) : piece;
      this.carry = Buffer.alloc(0);
      yield { offset: this.lineStart, bytes, complete: true };
      this.lineStart += bytes.length + 1;
      from = nl + 1;
    }
    if (from < chunk.length) this.carry = Buffer.concat([this.carry, chunk.subarray(from)]);
  }

  /** The torn final line, if the input did not end with a newline. */
  *end(): Generator<Line> {
    if (this.carry.length > 0) yield { offset: this.lineStart, bytes: this.carry, complete: false };
  }
}

/** Lines of the already-open `fd` from byte `start` up to `end` (exclusive). */
export function* readLinesSync(fd: number, start: number, end: number, chunkSize = CHUNK): Generator<Line> {
  let pos = start;
  const lines = new LineSplitter(start);
  while (pos < end) {
    // A fresh buffer per chunk: lines are slices of it and may outlive the next read.
    const chunk = preadSync(fd, pos, Math.min(chunkSize, end - pos));
    if (chunk.length === 0) break;
    pos += chunk.length;
    yield* lines.push(chunk, false);
  }
  yield* lines.end();
}

/** Lines of `file` from `start`, reading asynchronously so a long scan leaves the event loop free. */
export async function* readLines(file: string, start = 0, chunkSize = 256 * 1024, end = Infinity): AsyncGenerator<Line> {
  const fh = await open(file, 'r');
  try {
    let pos = start;
    const lines = new LineSplitter(start);
    const buf = Buffer.allocUnsafe(chunkSize);
    for (;;) {
      const want = Math.min(chunkSize, end - pos);
      if (want <= 0) break;
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      // Copy: `buf` is reused for the next read while the consumer may still hold the line.
      yield* lines.push(buf.subarray(0, bytesRead), true);
    }
    yield* lines.end();
  } finally {
    await fh.close();
  }
}

/** Reads exactly `length` bytes at `offset` of `fd` (short only at end of file). */
export function preadSync(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

export function withFd<T>(file: string, flags: string, f: (fd: number) => T): T {
  const fd = openSync(file, flags);
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}
