// The tunnel's data frames (RFC 6455 binary frames), built here and written straight to the stream's
// socket by both ends: the CLI's (client to gateway: masked, one buffer per local chunk with header,
// mask key and payload, and no masking pass where masking protects nothing) and the gateway's (gateway
// to client: unmasked, one buffer per turn's answer). No per-frame option object, no cork/writev pair
// for a small frame. ws still does the handshake, all reading, ping/pong and the close; see
// docs/decisions/zero-mask-on-trusted-tunnels.md for the mask.
import { randomFillSync } from 'node:crypto';
import type { Writable } from 'node:stream';
import { isLoopbackHost } from '../server/loopback.js';

/**
 * How the mask key is chosen. `zero`: the key 00 00 00 00, which makes masking the identity (RFC 6455
 * still sees a masked frame; ws on the gateway skips its unmasking pass for it). `random`: an
 * unpredictable key per frame, as RFC 6455 §5.3 asks.
 */
export type Masking = 'zero' | 'random';

/**
 * The zero key only where no intermediary can read the frames: TLS (`wss:`) or loopback. Masking
 * exists against proxies that misread attacker-chosen bytes as HTTP (RFC 6455 §10.3); on a plain
 * `ws:` URL to another host such a proxy may sit in the path, and the SQL text is chosen by whoever
 * drives the client, so frames there keep a random key.
 */
export function maskingFor(url: string): Masking {
  const u = new URL(url);
  return u.protocol === 'wss:' || isLoopbackHost(u.hostname) ? 'zero' : 'random';
}

/** Payloads above this are sent as two buffers (header, payload) rather than copied behind the header. */
export const COPY_LIMIT = 16 * 1024;

const RANDOM_POOL = 8 * 1024;

/** Writes the 2-, 4- or 10-byte start of a frame header (FIN, binary; `mask` sets the mask bit). */
function writeHeader(out: Buffer, n: number, lenBytes: number, mask: number): void {
  out[0] = 0x82;
  if (lenBytes === 0) out[1] = mask | n;
  else if (lenBytes === 2) {
    out[1] = mask | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = mask | 127;
    out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
}

/**
 * The gateway's frame carrying `payload` (FIN, binary, unmasked as RFC 6455 requires of a server), as
 * the buffers to write in order: one when the payload is at most COPY_LIMIT bytes (a turn's answer,
 * copied behind its header), else the header and then the payload itself.
 */
export function gatewayFrame(payload: Buffer): [Buffer] | [Buffer, Buffer] {
  const n = payload.length;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = 2 + lenBytes;
  if (n > COPY_LIMIT) {
    const h = Buffer.allocUnsafe(head);
    writeHeader(h, n, lenBytes, 0);
    return [h, payload];
  }
  const out = Buffer.allocUnsafe(head + n);
  writeHeader(out, n, lenBytes, 0);
  payload.copy(out, head);
  return [out];
}

/**
 * Writes a frame's buffers (gatewayFrame, DataFrameWriter.frame) to the stream's socket as one write:
 * one buffer as it is, two corked together. `done` runs once the frame's last byte is written.
 */
export function writeFrame(socket: Writable, parts: [Buffer] | [Buffer, Buffer], done?: () => void): void {
  if (parts.length === 1) {
    socket.write(parts[0], done);
    return;
  }
  socket.cork();
  socket.write(parts[0]);
  socket.write(parts[1], done);
  socket.uncork();
}

/** Builds the binary data frames of one stream. */
export class DataFrameWriter {
  private pool: Buffer | undefined;
  private poolAt = RANDOM_POOL;

  constructor(readonly masking: Masking) {}

  /**
   * The frame carrying `payload` (FIN set, opcode binary, masked), as the buffers to write in order:
   * one when the payload is small or empty, else the header and then the payload. With a random key
   * a large payload is masked in place: the caller hands over a chunk nobody else reads.
   */
  frame(payload: Buffer): [Buffer] | [Buffer, Buffer] {
    const n = payload.length;
    const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
    const head = 2 + lenBytes + 4;
    const copy = n <= COPY_LIMIT;
    const out = Buffer.allocUnsafe(copy ? head + n : head);
    writeHeader(out, n, lenBytes, 0x80);
    const k = head - 4;
    if (this.masking === 'zero') {
      out.writeUInt32BE(0, k);
      if (!copy) return [out, payload];
      payload.copy(out, head);
      return [out];
    }
    this.nextKey(out, k);
    const m0 = out[k]!, m1 = out[k + 1]!, m2 = out[k + 2]!, m3 = out[k + 3]!;
    const dst = copy ? out : payload;
    const at = copy ? head : 0;
    for (let i = 0; i < n; i++) {
      const m = (i & 3) === 0 ? m0 : (i & 3) === 1 ? m1 : (i & 3) === 2 ? m2 : m3;
      dst[at + i] = payload[i]! ^ m;
    }
    return copy ? [out] : [out, payload];
  }

  private nextKey(out: Buffer, at: number): void {
    if (this.poolAt === RANDOM_POOL) {
      this.pool ??= Buffer.allocUnsafe(RANDOM_POOL);
      randomFillSync(this.pool);
      this.poolAt = 0;
    }
    this.pool!.copy(out, at, this.poolAt, this.poolAt + 4);
    this.poolAt += 4;
  }
}
