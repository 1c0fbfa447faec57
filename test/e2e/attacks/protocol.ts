// Protocol-level attacks: message sequences no client library sends, written by hand (pg-protocol's
// serializer) and sent on a raw socket through the gateway as the masked reader. Each attack is a list
// of batches; a batch is written in one piece and answered before the next is sent. Every byte that
// comes back is scanned for raw PHI like the rest of the suite (attacks.test.ts).
//
// What they aim at: the gateway pairs rows with the statement (and RowDescription) they belong to by
// following both message streams (src/server/result-tracker.ts). A raw column that a top-level SELECT
// only returns is masked on the way out by its RowDescription, so rows paired with another
// statement's description would pass raw.
import { serialize } from 'pg-protocol';

export interface Msg {
  bytes: Buffer;
  /** ReadyForQuery messages it causes (Query, Sync). */
  ready: number;
}

export interface ProtocolAttack {
  family: string;
  name: string;
  batches: Msg[][];
  /** Also a failure when the answers contain this (e.g. the command tag of a write that needs approval). */
  forbid?: { pattern: RegExp; why: string };
}

export const q = (sql: string): Msg => ({ bytes: serialize.query(sql), ready: 1 });
export const parse = (name: string, text: string): Msg => ({ bytes: serialize.parse({ name, text }), ready: 0 });
export const bind = (portal: string, statement: string, binary = false): Msg => ({ bytes: serialize.bind({ portal, statement, binary }), ready: 0 });
export const describe = (type: 'S' | 'P', name: string): Msg => ({ bytes: serialize.describe({ type, name }), ready: 0 });
export const execute = (portal: string, rows = 0): Msg => ({ bytes: serialize.execute({ portal, rows }), ready: 0 });
export const close = (type: 'S' | 'P', name: string): Msg => ({ bytes: serialize.close({ type, name }), ready: 0 });
export const flush = (): Msg => ({ bytes: serialize.flush(), ready: 0 });
export const sync = (): Msg => ({ bytes: serialize.sync(), ready: 1 });

/** Top-level SELECTs that return masked columns as they are: sent unchanged, masked by RowDescription. */
const RAW_PLAIN = 'SELECT id, full_name, date_of_birth, ssn, email, mrn FROM apatients';
/** The same shape with no table behind it (RowDescription names no table column: nothing to mask). */
const HARMLESS = "SELECT 1 AS id, 'a'::text AS full_name, DATE '2000-01-01' AS date_of_birth, 'b'::text AS ssn, 'c'::text AS email, 'd'::text AS mrn";

/**
 * The same shape read from a table without masked columns: RowDescription names plain, unmasked table
 * columns, so output masking needs no lineage (the statement's text is not even looked at).
 */
const PLAIN_UNMASKED = 'SELECT id, note, note, note, note, note FROM ascratch';

export const PROTOCOL_ATTACKS: ProtocolAttack[] = [
  // A Describe's answer is applied to whatever the portal name means when the answer ARRIVES: rebind
  // the unnamed portal to the raw statement behind a Describe of the harmless one, and Execute.
  { family: 'tracker-describe-race', name: 'Describe P of the unnamed portal, then Bind it again to a raw SELECT before the answer',
    batches: [[parse('', HARMLESS), bind('', ''), describe('P', ''), parse('', RAW_PLAIN), bind('', ''), execute(''), sync()]] },
  { family: 'tracker-describe-race', name: 'Describe P, Close P and Bind the named portal again to a raw SELECT',
    batches: [[parse('', HARMLESS), bind('rt_p', ''), describe('P', 'rt_p'), close('P', 'rt_p'), parse('', RAW_PLAIN), bind('rt_p', ''), execute('rt_p'), sync()]] },
  // The same with a statement Describe: the answer lands on the statement now named ''.
  { family: 'tracker-describe-race', name: 'Describe S of the unnamed statement, then Parse it again as a raw SELECT',
    batches: [[parse('', HARMLESS), describe('S', ''), parse('', RAW_PLAIN), bind('', ''), execute(''), sync()]] },
  // ... and with a description that names plain unmasked columns, lineage is not consulted at all.
  { family: 'tracker-describe-race', name: 'Describe P of a plain unmasked SELECT, then Bind the unnamed portal again to a raw SELECT',
    batches: [[parse('', PLAIN_UNMASKED), bind('', ''), describe('P', ''), parse('', RAW_PLAIN), bind('', ''), execute(''), sync()]] },
  { family: 'tracker-describe-race', name: 'Describe P of a plain unmasked SELECT, Close P, Bind the named portal again to a raw SELECT',
    batches: [[parse('', PLAIN_UNMASKED), bind('rt_p', ''), describe('P', 'rt_p'), close('P', 'rt_p'), parse('', RAW_PLAIN), bind('rt_p', ''), execute('rt_p'), sync()]] },
  { family: 'tracker-describe-race', name: 'Describe S of a plain unmasked SELECT, then Parse the unnamed statement again as a raw SELECT',
    batches: [[parse('', PLAIN_UNMASKED), describe('S', ''), parse('', RAW_PLAIN), bind('', ''), execute(''), sync()]] },
  { family: 'tracker-describe-race', name: 'the same in binary format',
    batches: [[parse('', PLAIN_UNMASKED), bind('', '', true), describe('P', ''), parse('', RAW_PLAIN), bind('', '', true), execute(''), sync()]] },
  // A Bind the server refuses (the portal exists) still rebinds the name in the gateway's books; the
  // portal (made before the savepoint) survives ROLLBACK TO SAVEPOINT and runs the raw SELECT.
  { family: 'tracker-failed-bind', name: 'Bind over an existing portal fails, savepoint rolled back, Execute the original',
    batches: [[q('BEGIN')], [parse('', RAW_PLAIN), bind('rt_q', ''), sync()], [q('SAVEPOINT s')],
      [parse('', HARMLESS), describe('S', ''), bind('rt_q', ''), sync()], [q('ROLLBACK TO SAVEPOINT s')], [execute('rt_q'), sync()], [q('COMMIT')]] },
  // The same with a Bind of the unnamed portal that fails (wrong parameter count): PostgreSQL drops the
  // old unnamed portal first, so nothing runs (kept: it must stay that way).
  { family: 'tracker-failed-bind', name: 'a Bind of the unnamed portal with the wrong parameter count, savepoint rolled back, Execute the original',
    batches: [[q('BEGIN')], [parse('', RAW_PLAIN), bind('', ''), sync()], [q('SAVEPOINT s')],
      [parse('rt_h', `${PLAIN_UNMASKED} WHERE id = $1`), describe('S', 'rt_h'), bind('', 'rt_h'), sync()], [q('ROLLBACK TO SAVEPOINT s')], [execute(''), sync()], [q('COMMIT')]] },
  // Control: a pipelined rebind of the unnamed statement (no Describe of it in flight) gets the Describe the gateway injects.
  { family: 'tracker-describe-race', name: 'Parse the unnamed statement again after binding it, Describe S the new one, Execute the old portal',
    batches: [[parse('', RAW_PLAIN), bind('', ''), parse('', PLAIN_UNMASKED), describe('S', ''), execute(''), sync()]] },
  // Write approval is decided at Execute from the statement NAME the portal was bound from: the unnamed
  // statement parsed again after the Bind makes the gate judge the new text, while the portal runs the old one.
  { family: 'gate-portal-statement', name: 'an UPDATE bound to the unnamed portal, the unnamed statement parsed again as SELECT 1, Execute: no approval',
    batches: [[parse('', 'UPDATE apatients SET city = city WHERE id = 40'), bind('', ''), parse('', 'SELECT 1'), execute(''), sync()]],
    forbid: { pattern: /UPDATE 1\0/, why: 'the UPDATE of apatients ran without the approval rule phi-writes requires' } },
  { family: 'gate-portal-statement', name: 'an UPDATE bound to a named portal; a refused Bind of the same name to SELECT 1 in a savepoint; Execute: no approval',
    batches: [[q('BEGIN')], [parse('', 'UPDATE apatients SET city = city WHERE id = 40'), bind('rt_w', ''), sync()], [q('SAVEPOINT s')],
      [parse('', 'SELECT 1'), bind('rt_w', ''), sync()], [q('ROLLBACK TO SAVEPOINT s')], [execute('rt_w'), sync()], [q('COMMIT')]],
    forbid: { pattern: /UPDATE 1\0/, why: 'the UPDATE of apatients ran without the approval rule phi-writes requires' } },
  // ... and a write that fails on a NOT NULL constraint: PostgreSQL's DETAIL "Failing row contains (...)"
  // quotes the target's whole row raw (the target's rows are never replaced): the gateway masks it.
  { family: 'gate-portal-statement', name: 'UPDATE apatients SET ssn = NULL run past the gate: the not-null DETAIL quotes the row (masked by the gateway)',
    batches: [[parse('', 'UPDATE apatients SET ssn = NULL WHERE id = 40'), bind('', ''), parse('', 'SELECT 1'), execute(''), sync()]] },
  // Control: bound and executed as one statement, the UPDATE waits for an approver (and times out).
  { family: 'gate-portal-statement', name: 'an UPDATE parsed, bound and executed (control: held for approval)',
    batches: [[parse('', 'UPDATE apatients SET city = city WHERE id = 40'), bind('', ''), execute(''), sync()]],
    forbid: { pattern: /UPDATE 1\0/, why: 'the UPDATE of apatients ran without the approval rule phi-writes requires' } },
  // PostgreSQL applies a SET run by Execute at once but reports it at the Sync: a Query sent between
  // is read by the server with backslash escapes, by the gateway without. The gateway sees one SELECT
  // of two strings; the server also runs a hidden SELECT of encoded raw ssn. Held twice: the gateway
  // refuses such a Query (session/barrier.ts awaitingSync; `forbid` fails without it), and a result
  // set the gateway did not expect is masked whole.
  { family: 'lexing-after-execute', name: 'SET standard_conforming_strings = off by Execute, then before the Sync a Query hiding a raw SELECT in a string',
    batches: [[parse('', 'SET standard_conforming_strings = off'), bind('', ''), execute(''),
      q("SELECT 'x\\' , $$'; SELECT encode(convert_to(ssn, 'UTF8'), 'base64') AS hidden_ssn FROM apatients, generate_series(1, 3000); -- $$"), sync()]],
    forbid: { pattern: /hidden_ssn\0/, why: 'the server ran a SELECT the gateway never saw (it read the Query with standard_conforming_strings off)' } },
];
