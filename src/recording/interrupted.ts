// Closes the recording of a session a crash cut off: a torn last line (the write the crash
// interrupted) is cut, an `end` event with the reason is appended unless one is already there (a
// crash during an earlier repair), and the file is sealed like a recording its session closed.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { preadSync } from '../audit/lines.js';
import { recordingFileName } from './format.js';

export interface InterruptedSeal {
  sha256: string;
  /** File name within the recordings directory. */
  file: string;
  bytes: number;
  /** Statements the recording holds, and the time of its last event (ms since it started). */
  statements: number;
  durationMs: number;
  /** The torn last line cut before sealing, if there was one. */
  cut?: { bytes: number; sha256: string };
}

export class RecordingRepairError extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
    this.name = 'RecordingRepairError';
  }
}

const CHUNK = 1 << 20;

/**
 * Ends and seals the recording of `sessionId` in `dir` as interrupted. Returns undefined when the
 * session has no recording; throws RecordingRepairError when the file holds no complete line (not
 * even its header), which is not something to seal.
 */
export function sealInterruptedRecording(dir: string, sessionId: string, reason: string): InterruptedSeal | undefined {
  const file = recordingFileName(sessionId);
  const path = join(dir, file);
  if (!existsSync(path)) return undefined;
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    const end = completeLinesEnd(fd, size);
    if (end === 0) throw new RecordingRepairError(path, `the recording ${path} holds no complete line (${size} bytes)`);
    let cut: InterruptedSeal['cut'];
    if (end < size) {
      const torn = preadSync(fd, end, size - end);
      cut = { bytes: torn.length, sha256: createHash('sha256').update(torn).digest('hex') };
      ftruncateSync(fd, end);
    }
    const last = lastLine(fd, end);
    // The session's last known moment, so a replay lasts as long as the session was seen to.
    const t = typeof last?.['t'] === 'number' ? last['t'] : 0;
    const statements = typeof last?.['n'] === 'number' ? last['n'] : typeof last?.['statements'] === 'number' ? last['statements'] : 0;
    if (last?.['type'] !== 'end') {
      const line = Buffer.from(`${JSON.stringify({ t, type: 'end', statements, reason, ...(cut ? { cut_bytes: cut.bytes } : {}) })}\n`);
      let done = 0;
      while (done < line.length) done += writeSync(fd, line, done, line.length - done, end + done);
    }
    fsyncSync(fd);
    const hash = createHash('sha256');
    const total = fstatSync(fd).size;
    for (let off = 0; off < total; off += CHUNK) hash.update(preadSync(fd, off, Math.min(CHUNK, total - off)));
    return { sha256: hash.digest('hex'), file, bytes: total, statements, durationMs: t, ...(cut ? { cut } : {}) };
  } finally {
    closeSync(fd);
  }
}

/** Bytes up to and including the last newline. */
function completeLinesEnd(fd: number, size: number): number {
  for (let from = size; from > 0;) {
    const start = Math.max(0, from - CHUNK);
    const nl = preadSync(fd, start, from - start).lastIndexOf(10);
    if (nl !== -1) return start + nl + 1;
    from = start;
  }
  return 0;
}

/** The last complete line (ending at `end`) as an object, or undefined when it is not JSON. */
function lastLine(fd: number, end: number): Record<string, unknown> | undefined {
  let start = end - 1;
  for (let from = end - 1; from > 0;) {
    const s = Math.max(0, from - CHUNK);
    const nl = preadSync(fd, s, from - s).lastIndexOf(10);
    if (nl !== -1) {
      start = s + nl + 1;
      break;
    }
    from = s;
    start = 0;
  }
  try {
    const v = JSON.parse(preadSync(fd, start, end - 1 - start).toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
