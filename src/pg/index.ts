// Public API of the sans-I/O PostgreSQL codec: frontend parser, backend framer, backend serializer and decoders.
export { ProtocolError } from './errors.js';
export {
  FrontendParser,
  DEFAULT_MAX_MESSAGE_SIZE,
  PROTOCOL_VERSION_3_0,
  CANCEL_REQUEST_CODE,
  SSL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  type FrontendMessage,
  type FrontendPhase,
  type FrontendParserOptions,
} from './frontend.js';
export { BackendFramer, type BackendFrame, type BackendFramerOptions } from './backend-framing.js';
export { ByteSink } from './byte-sink.js';
export * from './backend-messages.js';
export * from './backend-decode.js';
export { BackendType, FrontendType, TransactionStatusByte } from './message-types.js';
