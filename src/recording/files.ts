// Finding a session's recording on disk by id or unique prefix, as `phigate replay 3f2a` allows.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { recordingFileName } from './format.js';

export class RecordingLookupError extends Error {
  constructor(readonly reason: 'invalid' | 'not_found' | 'ambiguous', message: string) {
    super(message);
    this.name = 'RecordingLookupError';
  }
}

/** The session id whose recording is in `dir`: `idOrPrefix` itself, or the one id it starts (4+ characters). */
export function resolveRecording(dir: string, idOrPrefix: string): string {
  let exact: string;
  try {
    exact = recordingFileName(idOrPrefix);
  } catch {
    throw new RecordingLookupError('invalid', `not a session id: ${JSON.stringify(idOrPrefix.slice(0, 40))}`);
  }
  if (existsSync(join(dir, exact))) return idOrPrefix;
  if (idOrPrefix.length >= 4 && existsSync(dir)) {
    const hits = readdirSync(dir).filter((f) => f.startsWith(idOrPrefix) && f.endsWith('.ndjson'));
    if (hits.length === 1) return hits[0]!.slice(0, -'.ndjson'.length);
    if (hits.length > 1) throw new RecordingLookupError('ambiguous', `${hits.length} sessions start with "${idOrPrefix}"; give more of the id`);
  }
  throw new RecordingLookupError('not_found', `no recording of session "${idOrPrefix}" (see \`phigate sessions\`)`);
}
