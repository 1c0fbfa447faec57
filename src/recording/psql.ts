// Renders a recording the way psql showed it: aligned result tables (psql's default format, border
// 1), command tags, ERROR/NOTICE lines, and the prompt with the statement. Pure: a recording in,
// timed blocks of text lines out; the terminal player and `replay` without a TTY both use it.
import type { Column, Message, Recording, RecordingEvent } from './format.js';
import { plural } from '../ui/plural.js';
import { displayWidth } from '../ui/width.js';

/** Types psql right-aligns (print.c column_type_alignment). */
const NUMERIC_OIDS = new Set([20, 21, 23, 26, 28, 29, 700, 701, 790, 1700, 5069]);

const spaces = (n: number): string => (n > 0 ? ' '.repeat(n) : '');

/**
 * psql's aligned table: header centred, numbers right-aligned, `+` where a value continues on the
 * next line, then `(N rows)` and an empty line. Lines are exactly psql's, trailing spaces included.
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly (string | null)[])[], rowCount = rows.length): string[] {
  const out: string[] = [];
  const ncol = columns.length;
  const right = columns.map((c) => c.type !== undefined && NUMERIC_OIDS.has(c.type));
  const cells = rows.map((r) => columns.map((_, i) => (r[i] ?? '').split('\n')));
  const headers = columns.map((c) => c.name.split('\n'));
  const width = columns.map((_, i) => Math.max(
    ...headers[i]!.map(displayWidth),
    ...cells.map((r) => Math.max(...r[i]!.map(displayWidth))),
  ));
  if (ncol === 0) {
    out.push('--');
  } else {
    const headerLines = Math.max(...headers.map((h) => h.length));
    for (let l = 0; l < headerLines; l++) {
      let line = '';
      for (let i = 0; i < ncol; i++) {
        const text = headers[i]![l] ?? '';
        const pad = width[i]! - displayWidth(text);
        const more = l < headers[i]!.length - 1;
        line += `${i === 0 ? ' ' : ''}${spaces(Math.floor(pad / 2))}${text}${spaces(pad - Math.floor(pad / 2))}${more ? '+' : ' '}${i < ncol - 1 ? '|' : ''}${i < ncol - 1 ? ' ' : ''}`;
      }
      out.push(line);
    }
    out.push(width.map((w, i) => `${i === 0 ? '-' : ''}${'-'.repeat(w)}${i < ncol - 1 ? '-+-' : '-'}`).join(''));
    for (const r of cells) {
      const lines = Math.max(...r.map((c) => c.length));
      for (let l = 0; l < lines; l++) {
        let line = '';
        for (let i = 0; i < ncol; i++) {
          const part = r[i]![l];
          const text = part ?? '';
          const pad = width[i]! - displayWidth(text);
          const more = l < r[i]!.length - 1;
          const last = i === ncol - 1;
          let cell: string;
          if (right[i]) cell = `${spaces(pad)}${text}`;
          else cell = last && !more ? text : `${text}${spaces(pad)}`;
          line += `${i === 0 ? ' ' : ''}${cell}`;
          if (!last) line += `${more ? '+' : ' '}| `;
          else if (more) line += '+';
        }
        out.push(line);
      }
    }
  }
  out.push(`(${rowCount} ${rowCount === 1 ? 'row' : 'rows'})`);
  out.push('');
  return out;
}

/** `ERROR:  message` with DETAIL and HINT lines, as psql prints server messages. */
export function formatMessage(m: Message, fallbackSeverity: string): string[] {
  const sev = m.severity ?? fallbackSeverity;
  const out = [`${sev}:  ${m.message}`];
  if (m.detail) out.push(`DETAIL:  ${m.detail}`);
  if (m.hint) out.push(`HINT:  ${m.hint}`);
  return out;
}

/** The prompt psql shows for the database (`ehr=> `, continuation `ehr-> `). */
export function promptFor(database: string): { first: string; more: string } {
  return { first: `${database}=> `, more: `${database}-> ` };
}

export type BlockKind = 'statement' | 'result' | 'message' | 'phigate' | 'end';

/** Text that appeared at time `t` (ms since the session started). */
export interface Block {
  t: number;
  kind: BlockKind;
  /** Statement number in the session (0 before the first). */
  n: number;
  lines: string[];
  /** For kind 'message': error or notice. */
  tone?: 'error' | 'notice' | 'info';
}

export interface RenderOptions {
  /**
   * At most this many rows of each result are shown; the rest are one line, `... N more rows`,
   * above psql's `(N rows)` footer. Undefined: every recorded row.
   */
  maxRows?: number;
}

/** The recording as timed blocks of psql-like output, in order. */
export function renderBlocks(rec: Recording, opts: RenderOptions = {}): Block[] {
  const db = rec.header.client_database || rec.header.connection;
  const prompt = promptFor(db);
  const blocks: Block[] = [];
  let columns: Column[] | undefined;
  let rows: (string | null)[][] = [];
  const push = (e: RecordingEvent, kind: BlockKind, lines: string[], tone?: Block['tone']): void => {
    blocks.push({ t: e.t, kind, n: 'n' in e ? e.n : 0, lines, ...(tone ? { tone } : {}) });
  };
  for (const e of rec.events) {
    switch (e.type) {
      case 'statement': {
        columns = undefined;
        rows = [];
        const sql = e.sql.trimEnd();
        const text = /;\s*$/.test(sql) ? sql : `${sql};`;
        const lines = text.split('\n').map((l, i) => `${i === 0 ? prompt.first : prompt.more}${l}`);
        push(e, 'statement', lines);
        break;
      }
      case 'wait': {
        const who = e.approver ? ` by ${e.approver}` : '';
        const why = e.reason ? `: ${e.reason}` : '';
        const line = e.state === 'waiting'
          ? `-- phigate: waiting for approval ${e.approval}${e.approvers?.length ? ` from ${e.approvers.join(' or ')}` : ''}${e.rule ? ` (rule ${e.rule})` : ''}`
          : e.state === 'approved' ? `-- phigate: ${e.approval} approved${who}${why}`
            : e.state === 'timeout' ? `-- phigate: ${e.approval} timed out`
              : `-- phigate: ${e.approval} ${e.state}${who}${why}`;
        push(e, 'phigate', [line], 'info');
        break;
      }
      case 'columns':
        columns = e.columns;
        rows = [];
        break;
      case 'row':
        rows.push(e.values);
        break;
      case 'complete': {
        if (columns) {
          const hidden = opts.maxRows !== undefined && rows.length > opts.maxRows ? rows.length - opts.maxRows : 0;
          const lines = formatTable(columns, hidden ? rows.slice(0, opts.maxRows) : rows, e.rows);
          if (hidden) lines.splice(lines.length - 2, 0, `... ${plural(hidden, 'more row')} (--rows all shows them)`);
          if (e.recorded < e.rows) lines.splice(lines.length - 1, 0, `-- phigate: ${plural(e.recorded, 'row')} of ${plural(e.rows, 'row')} recorded (row cap ${rec.header.row_cap})`);
          push(e, 'result', lines);
        } else {
          push(e, 'result', [e.tag]);
        }
        columns = undefined;
        rows = [];
        break;
      }
      case 'error':
        push(e, 'message', formatMessage(e, 'ERROR'), 'error');
        columns = undefined;
        rows = [];
        break;
      case 'notice':
        push(e, 'message', formatMessage(e, 'NOTICE'), 'notice');
        break;
      case 'end':
        push(e, 'end', [`-- session ended after ${plural(e.statements, 'statement')}${e.reason ? ` (${e.reason})` : ''}`], 'info');
        break;
    }
  }
  return blocks;
}

/** The whole session as text (replay without a terminal, and tests). */
export function renderText(rec: Recording, opts: RenderOptions = {}): string {
  return renderBlocks(rec, opts).flatMap((b) => b.lines).join('\n') + '\n';
}
