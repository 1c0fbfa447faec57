// The one error type of the PostgreSQL codec: a wire-protocol violation, carrying SQLSTATE 08P01 so the gateway can answer the client with it as PostgreSQL would.
import { PhigateError } from '../common/errors.js';

/**
 * A violation of the PostgreSQL wire protocol found while decoding bytes.
 *
 * The codec never throws it: parsers return it (or a `{ type: 'ProtocolError' }` message) so the
 * hot path stays free of exceptions and the caller decides how to end the connection.
 */
export class ProtocolError extends PhigateError {
  /** SQLSTATE 08P01 (`sqlstate`), as PostgreSQL reports the same faults. */
  declare readonly code: 'protocol_violation';

  /**
   * `size`: set when the fault is a message longer than the configured maximum (not a malformed
   * one), so the caller can name its own limit.
   */
  constructor(
    message: string,
    readonly size?: { length: number; limit: number },
  ) {
    super(message, 'protocol_violation');
    this.name = 'ProtocolError';
  }
}

/** `'Q'` for printable ASCII, `0x7a`-style hex otherwise, so messages never carry control bytes. */
export function describeTypeByte(type: number): string {
  return type >= 0x21 && type <= 0x7e ? `'${String.fromCharCode(type)}'` : hexByte(type);
}

export function hexByte(type: number): string {
  return `0x${type.toString(16).padStart(2, '0')}`;
}
