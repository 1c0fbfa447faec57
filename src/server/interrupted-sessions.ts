// At startup, before server.start: the sessions a crash left open in the audit log (session.start
// without session.end) are ended with reason `interrupted`, each recording cut of its torn last line,
// ended and sealed, so `phigate sessions`, `replay` and `audit verify` see closed, sealed sessions.
import type { AuditLog } from '../audit/log.js';
import type { SessionEndEvent } from '../audit/events.js';
import { findOpenSessions } from '../audit/open-sessions.js';
import { sealInterruptedRecording } from '../recording/interrupted.js';
import type { Logger } from '../common/log.js';

export const INTERRUPTED = 'interrupted';

/** Ends the log's open sessions; returns their session.end events (already appended). */
export function closeInterruptedSessions(audit: AuditLog, recordingsDir: string, log: Logger): SessionEndEvent[] {
  const open = findOpenSessions(audit.file);
  const ends: SessionEndEvent[] = [];
  for (const s of open) {
    let seal: ReturnType<typeof sealInterruptedRecording>;
    try {
      seal = sealInterruptedRecording(recordingsDir, s.session, INTERRUPTED);
    } catch (err) {
      // The session is still ended in the log; its recording stays unsealed, and says so.
      log.error('cannot seal the recording of an interrupted session', { session: s.session, error: (err as Error).message });
    }
    ends.push({
      type: 'session.end', session: s.session, user: s.user, connection: s.connection,
      // What the recording shows: the counts kept in memory died with the process.
      duration_ms: seal?.durationMs ?? 0, statements: seal?.statements ?? 0, reason: INTERRUPTED,
      ...(seal ? { recording: { sha256: seal.sha256, file: seal.file } } : {}),
      ...(seal?.cut ? { recording_cut: seal.cut } : {}),
    });
  }
  if (ends.length > 0) {
    audit.appendMany(ends);
    log.warn('sessions interrupted by the previous stop were closed', { sessions: ends.length, torn_recordings: ends.filter((e) => e.recording_cut).length });
  }
  return ends;
}
