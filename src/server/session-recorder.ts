// Feeds one session's recording from what the gateway already does: statements as they are
// decided, approval waits, and result messages as they leave for the client (so rows are recorded
// exactly as the client saw them: masked). Values are decoded to text; binary values are noted.
import { BackendType, ProtocolError, decodeCommandComplete, decodeDataRow, decodeErrorFields, type BackendFrame } from '../pg/index.js';
import { RecordingWriter, type RecordingSealResult, type StatementInfo, type WaitInfo } from '../recording/writer.js';
import type { RecordingMeta } from '../recording/format.js';
import type { BackendVerdict, ResultShape } from './result-tracker.js';
import type { Logger } from '../common/log.js';

/** A single-quoted SQL literal as plans print constants ('it''s'::text). */
const QUOTED_LITERAL = /'(?:[^']|'')*'/g;

export class SessionRecorder {
  private readonly writer: RecordingWriter;
  private shape?: ResultShape;

  constructor(dir: string, sessionId: string, meta: RecordingMeta, log: Logger, rowCap?: number) {
    this.writer = RecordingWriter.open(dir, sessionId, meta, {
      rowCap,
      onError: (err) => log.error('session recording failed; the session continues, the seal records the failure', { session: sessionId, error: err.message }),
    });
  }

  /** `continues`: more rows of the previous result (see RecordingWriter.statement). */
  statement(s: StatementInfo, continues = false): void {
    this.writer.statement(s, continues);
  }

  wait(w: WaitInfo): void {
    this.writer.wait(w);
  }

  /** False once the statement's row cap is reached: later rows are only counted (see countRow). */
  keepsNextRow(): boolean {
    return this.writer.keepsNextRow();
  }

  /** A DataRow past the cap: counted, not decoded. */
  countRow(): void {
    this.writer.countRow();
  }

  /** One backend message as sent to the client (`sent` is the possibly rewritten message). */
  frame(f: BackendFrame, v: BackendVerdict, sent: Buffer | undefined): void {
    switch (f.type) {
      case BackendType.RowDescription:
        if (v.kind === 'rowDescription') {
          this.shape = v.shape;
          this.writer.rowDescription(v.shape.fields.map((c) => ({ name: c.name, type: c.typeOid })));
        }
        return;
      case BackendType.DataRow: {
        if (!sent) return;
        // Past the per-statement cap a row is only counted: no decoding on the hot path of big results.
        if (!this.writer.keepsNextRow()) {
          this.writer.countRow();
          return;
        }
        const shape = v.kind === 'dataRow' ? (v.shape ?? this.shape) : this.shape;
        const values = decodeDataRow(sent.subarray(5));
        if (values instanceof ProtocolError) return;
        // A plan quotes the statement's literals (a guessed name in a Filter line): evidence never
        // holds literals, so they are replaced as in the statement text.
        const plan = shape?.fields.length === 1 && shape.fields[0]?.name === 'QUERY PLAN';
        this.writer.row(values.map((b, i) => {
          if (b === null) return null;
          if (shape?.fields[i]?.format === 1) return `<binary ${b.length} bytes>`;
          const text = b.toString('utf8');
          return plan ? text.replace(QUOTED_LITERAL, "'?'") : text;
        }));
        return;
      }
      case BackendType.CommandComplete: {
        const tag = decodeCommandComplete(f.body);
        if (!(tag instanceof ProtocolError)) this.writer.complete({ tag });
        return;
      }
      case BackendType.ErrorResponse:
      case BackendType.NoticeResponse: {
        const e = decodeErrorFields(sent ? sent.subarray(5) : f.body);
        if (e instanceof ProtocolError) return;
        const m = { severity: e.severity, code: e.code, message: e.message, detail: e.detail, hint: e.hint };
        if (f.type === BackendType.ErrorResponse) this.writer.error(m);
        else this.writer.notice(m);
        return;
      }
    }
  }

  close(reason: string): RecordingSealResult {
    return this.writer.close({ reason });
  }
}
