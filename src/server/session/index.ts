// One client session on the server: the tunnel stream on one side, an upstream PostgreSQL connection
// on the other (see docs/architecture.md, "The session").
export { ClientSession } from './shell.js';
export type { SessionOptions, SourceMaskingHandle } from './options.js';
