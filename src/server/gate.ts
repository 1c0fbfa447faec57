// The statement gate of one session: classifies what the client asks to run and decides it with the
// policy in force, in protocol order (Query; Parse/Bind/Execute). Pure: the session does the I/O.
// Blocks are decided at Query/Parse; approvals hold the message that runs the statement (Query or
// Execute), so a statement prepared once and executed many times needs approval per execution
// unless an approver released it for the rest of the session: by its exact text (scope
// `statement`), by its shape (`shape`: any literals), or everything its rule holds (`session`).
import type { ErrorFields } from '../pg/index.js';
import { redactLiterals, type Classification, type Statement } from '../policy/classify/index.js';
import type { ShapeClassifierCache } from '../policy/shape-cache.js';
import type { ApprovalScope } from '../approvals/types.js';
import { decideStatements, type Decision, type DecisionSubject } from '../policy/decide.js';
import type { PolicyFile } from '../policy/file.js';
import { reachOf, SessionDefinitions } from '../policy/reach.js';
import type { CatalogSnapshot } from './catalog.js';
import { statementCountError } from './size-limits.js';
import { ERROR_TABLE } from '../common/errors.js';

/** `text`, on an Execute's verdict: the prepared statement's text it runs (the possibility decided on). */
/** `redacted`, on an Execute's verdict: that text's redaction when the Parse had it made elsewhere (the analysis worker). */
export type Verdict =
  | { action: 'allow'; decision?: Decision; barrier?: boolean; copyIn?: boolean; text?: string; redacted?: string }
  | { action: 'block'; error: ErrorFields; decision?: Decision; text?: string; redacted?: string }
  | { action: 'approve'; decision: Decision; statement: string; fingerprint: string; sql: string; barrier?: boolean; copyIn?: boolean; text?: string; redacted?: string };

const INSUFFICIENT_PRIVILEGE = ERROR_TABLE.denied.sqlstate;

export interface GateOptions {
  policy: () => PolicyFile;
  classifier: Pick<ShapeClassifierCache, 'classify'>;
  connection: string;
  identity: DecisionSubject;
  maskedColumns?: ReadonlySet<string>;
  /** Results are masked for this reader: statements that would copy masked columns elsewhere are refused. */
  maskedReader?: boolean;
  /**
   * The connection's catalog snapshot, for what writes (and reads) reach through views, rules,
   * triggers, partitions and volatile functions (policy/reach.ts). Absent or undefined: statements
   * are decided on the names they contain only.
   */
  catalog?: () => CatalogSnapshot | undefined;
}

export class StatementGate {
  /**
   * Prepared statements by name, for the protocol (Parse) and SQL (PREPARE) alike: PostgreSQL keeps
   * them in one name space. Each name holds every statement it might stand for: a PREPARE or Parse
   * of a taken name fails in PostgreSQL, and a DEALLOCATE or Close may fail too (in an aborted
   * transaction), so the gate never forgets nor replaces, and running a name is decided as the
   * strictest of its possibilities. The unnamed statement '' is replaced by every Parse, as in
   * PostgreSQL.
   */
  private readonly prepared = new Map<string, Prepared[]>();
  /**
   * Portal name → the statement it was bound from, as its possibilities were when the Bind was
   * forwarded: the statement's name may mean another statement by the Execute (`Bind '' ''; Parse ''
   * 'SELECT 1'; Execute ''` runs the first). The session closes a portal before each Bind, so a
   * failed Bind leaves no earlier statement bound under the name.
   */
  private readonly portals = new Map<string, { statement: string; options: Prepared[] | undefined }>();
  /** Exact statement texts an approver released for the rest of this session (scope `statement`). */
  private readonly releasedTexts = new Set<string>();
  /** Statement shapes (parser fingerprints: literals ignored) released for the session (scope `shape`). */
  private readonly releasedShapes = new Set<string>();
  /** Rules released for the session (scope `session`), valid while the policy that has them is in force. */
  private releasedRules?: { policy: PolicyFile; rules: Set<string> };
  /**
   * Decisions per classification (the cache hands out one frozen object per statement shape) and
   * policy: identity and connection are fixed for the session, so a repeat costs one lookup.
   */
  private decisions = new WeakMap<Classification, Decision>();
  /** Redacted text per classification: statements of one shape redact to the same text. */
  private readonly redactions = new WeakMap<Classification, string>();
  private decidedUnder?: { policy: PolicyFile; snapshot: CatalogSnapshot | undefined; definitions: number };
  /** Statements with what they reach added, under the snapshot, policy and definitions of decidedUnder (Execute decides per message). */
  private reached = new WeakMap<Statement, Statement>();
  /** This session's DDL that the catalog snapshot may not show yet (see SessionDefinitions). */
  private readonly definitions = new SessionDefinitions();
  private last?: { sql: string; c: Classification };

  constructor(private readonly opts: GateOptions) {}

  onQuery(sql: string): Verdict {
    const c = this.classify(sql);
    // Refused whole, before any part is decided (a PREPARE in it is not remembered either).
    const tooMany = c.ok ? statementCountError(c.statements.length, this.opts.policy().limits) : undefined;
    if (tooMany) return { action: 'block', error: tooMany };
    return this.judge(sql, c);
  }

  onParse(name: string, sql: string): Verdict {
    const c = this.classify(sql);
    if (name === '') this.prepared.delete('');
    if (c.ok && c.statements.length > 1) {
      // PostgreSQL refuses these too; refusing here keeps the gateway and the server in agreement.
      return { action: 'block', error: { severity: 'ERROR', code: '42601', message: 'phigate: cannot insert multiple commands into a prepared statement' } };
    }
    const verdict = this.judge(sql, c);
    if (verdict.action === 'block' || !c.ok) return verdict;
    const st = c.statements[0];
    if (st) this.remember(name, { sql, statement: st, fingerprint: c.fingerprint || sql, redacted: this.redactions.get(c) });
    // Parsing runs nothing: an approval (or a settings barrier) applies when it is executed.
    return { action: 'allow', decision: verdict.decision };
  }

  onBind(portal: string, statement: string): void {
    const options = this.prepared.get(statement);
    this.portals.set(portal, { statement, options: options === undefined ? undefined : [...options] });
  }

  onExecute(portal: string): Verdict {
    const bound = this.portals.get(portal);
    const options = bound?.options;
    if (!options || options.length === 0) return unknownPrepared(bound?.statement ?? portal);
    const policy = this.currentPolicy();
    const statements: Statement[] = [];
    for (const o of options) {
      const r = this.resolve(o.statement);
      if (r === undefined) return unknownPrepared(o.statement.preparedName ?? '');
      statements.push(...r);
    }
    const decision = this.decide(statements, policy);
    const subject = options[decision.statementIndex ?? 0] ?? options[0]!;
    const v = this.verdictFor(decision, subject, options.some((o) => mayChangeLexing(o.statement)), statements);
    v.text = subject.sql;
    if (subject.redacted !== undefined) v.redacted = subject.redacted;
    return v;
  }

  onClose(kind: 'S' | 'P', name: string): void {
    // Closing a statement may fail in PostgreSQL; only portals (harmless to remember) are dropped.
    if (kind === 'P') this.portals.delete(name);
  }

  /** Classifies once per message: the session asks for the same text's redaction right after. */
  private classify(sql: string): Classification {
    if (this.last?.sql === sql) return this.last.c;
    const c = this.opts.classifier.classify(sql);
    this.last = { sql, c };
    return c;
  }

  /** The statement as evidence may show it: every literal replaced. */
  redact(sql: string): string {
    const c = this.classify(sql);
    let r = this.redactions.get(c);
    if (r === undefined) {
      r = redactLiterals(sql);
      this.redactions.set(c, r);
    }
    return r;
  }

  /** The redaction of `c`'s text made elsewhere (the analysis worker), so evidence does not lex it again here. */
  adoptRedaction(c: Classification, redacted: string): void {
    this.redactions.set(c, redacted);
  }

  /**
   * A Parse refused before it was classified (its text is over limits.statement_bytes): the unnamed
   * statement is replaced all the same, as PostgreSQL replaces it before parsing.
   */
  refuseParse(name: string, error: ErrorFields): Verdict {
    if (name === '') this.prepared.delete('');
    return { action: 'block', error };
  }

  /**
   * An approver approved `verdict` with `scope`: what it releases for the rest of the session runs
   * without asking again. `once` releases nothing more.
   */
  release(scope: ApprovalScope, verdict: Extract<Verdict, { action: 'approve' }>): void {
    if (scope === 'statement') this.releasedTexts.add(verdict.sql);
    else if (scope === 'shape' && verdict.fingerprint !== '') this.releasedShapes.add(verdict.fingerprint);
    else if (scope === 'session' && verdict.decision.rule !== undefined) {
      const policy = this.opts.policy();
      if (this.releasedRules?.policy !== policy) this.releasedRules = { policy, rules: new Set() };
      this.releasedRules.rules.add(verdict.decision.rule);
    }
  }

  private isReleased(subject: Prepared, decision: Decision): boolean {
    if (this.releasedTexts.has(subject.sql) || this.releasedShapes.has(subject.fingerprint)) return true;
    const r = this.releasedRules;
    return r !== undefined && decision.rule !== undefined && r.policy === this.opts.policy() && r.rules.has(decision.rule);
  }

  /** The policy in force; cached decisions are dropped when it, the catalog snapshot or this session's definitions change. */
  private currentPolicy(): PolicyFile {
    const policy = this.opts.policy();
    const snapshot = this.opts.catalog?.();
    const u = this.decidedUnder;
    if (u === undefined || u.policy !== policy || u.snapshot !== snapshot || u.definitions !== this.definitions.version) {
      this.decisions = new WeakMap();
      this.reached = new WeakMap();
      this.decidedUnder = { policy, snapshot, definitions: this.definitions.version };
    }
    return policy;
  }

  private decide(statements: readonly Statement[], policy: PolicyFile): Decision {
    const snapshot = this.opts.catalog?.();
    let decided: readonly Statement[] = statements;
    if (snapshot !== undefined) {
      // Definitions first: `CREATE VIEW v ...; UPDATE v ...` must see v's reach.
      let learnt = false;
      for (const s of statements) learnt = this.definitions.record(s) || learnt;
      if (learnt) this.currentPolicy();
      decided = statements.map((s) => {
        let r = this.reached.get(s);
        if (r === undefined) {
          r = reachOf(s, snapshot, { functions: policy.functions, session: this.definitions });
          this.reached.set(s, r);
        }
        return r;
      });
    }
    return decideStatements(decided, {
      rules: policy.rules, defaultAction: policy.default, connection: this.opts.connection,
      identity: this.opts.identity, maskedColumns: this.opts.maskedColumns, serverAccess: policy.serverAccess,
    });
  }

  private judge(sql: string, c: Classification): Verdict {
    if (!c.ok) {
      // Fail closed: what cannot be parsed cannot be decided.
      return {
        action: 'block',
        error: {
          severity: 'ERROR', code: /syntax error/.test(c.error) ? '42601' : INSUFFICIENT_PRIVILEGE,
          message: `phigate: cannot classify this statement, so it was not run: ${c.error}`,
        },
      };
    }
    const policy = this.currentPolicy();
    // PREPARE/EXECUTE/DEALLOCATE change or depend on session state: never served from the cache.
    const stateful = c.statements.some((s) => s.kind === 'prepare' || s.kind === 'execute' || s.kind === 'deallocate');
    let decision = stateful ? undefined : this.decisions.get(c);
    if (decision === undefined) {
      const resolved: Statement[] = [];
      for (const s of c.statements) {
        // In order, so `PREPARE q AS ...; EXECUTE q` finds q. A PREPARE is remembered even if the
        // string is then refused: an extra possibility only makes later decisions stricter.
        if (s.kind === 'prepare' && s.preparedName !== undefined) {
          this.remember(s.preparedName, { sql, statement: { ...s, kind: s.prepares ?? 'other' }, fingerprint: c.fingerprint || sql });
        }
        const r = this.resolve(s);
        if (r === undefined) return unknownPrepared(s.preparedName ?? '');
        resolved.push(...r);
      }
      decision = this.decide(resolved, policy);
      if (!stateful) this.decisions.set(c, decision);
    }
    return this.verdictFor(decision, { sql, statement: c.statements[0]!, fingerprint: c.fingerprint || sql }, c.statements.some(mayChangeLexing), c.statements);
  }

  private verdictFor(decision: Decision, subject: Prepared, barrier = false, statements: readonly Statement[] = [subject.statement]): Verdict {
    if (this.opts.maskedReader && decision.action !== 'block') {
      for (const st of statements) {
        const copy = copiesMasked(st, this.opts.maskedColumns);
        if (copy) {
          return {
            action: 'block', decision,
            error: { severity: 'ERROR', code: INSUFFICIENT_PRIVILEGE, message: `phigate: ${copy}; results are masked for you, and a copy made inside the database would not be` },
          };
        }
      }
    }
    const v = this.verdictOf(decision, subject);
    if (barrier && v.action !== 'block') v.barrier = true;
    if (v.action !== 'block' && statements.some(copiesFromClient)) v.copyIn = true;
    return v;
  }

  private verdictOf(decision: Decision, subject: Prepared): Verdict {
    if (decision.action === 'block') {
      return { action: 'block', decision, error: { severity: 'ERROR', code: INSUFFICIENT_PRIVILEGE, message: `phigate: ${decision.reason}` } };
    }
    if (decision.action === 'approve') {
      if (this.isReleased(subject, decision)) return { action: 'allow', decision };
      return { action: 'approve', decision, statement: this.redact(subject.sql), fingerprint: subject.fingerprint, sql: subject.sql };
    }
    return { action: 'allow', decision };
  }

  /** EXECUTE name stands for every statement the name may hold; undefined when it holds none. */
  private resolve(s: Statement): Statement[] | undefined {
    if (s.kind !== 'execute') return [s];
    const options = s.preparedName === undefined ? undefined : this.prepared.get(s.preparedName);
    return options?.map((o) => o.statement);
  }

  private remember(name: string, p: Prepared): void {
    if (name === '') {
      this.prepared.set('', [p]);
      return;
    }
    const list = this.prepared.get(name) ?? [];
    if (list.some((x) => x.sql === p.sql)) return;
    list.push(p);
    if (list.length > MAX_POSSIBILITIES) {
      // A name re-prepared this often could stand for anything: treat it like opaque code (the
      // strictest applicable rule decides), never by dropping a possibility.
      this.prepared.set(name, [{ ...p, statement: { ...p.statement, kind: 'do', opaque: true } }]);
      return;
    }
    this.prepared.set(name, list);
  }
}

interface Prepared {
  sql: string;
  /** The statement running the name executes (for SQL PREPARE: the prepared statement's kind). */
  statement: Statement;
  fingerprint: string;
  /** The text's redaction, when it was made off the event loop (a large text: executing it must not parse it here). */
  redacted?: string;
}

const MAX_POSSIBILITIES = 32;

/** Running a prepared statement the gate has not seen decided: refuse (fail closed). */
function unknownPrepared(name: string): Verdict {
  return {
    action: 'block',
    error: { severity: 'ERROR', code: '26000', message: `phigate: prepared statement "${name}" was not prepared through phigate in this session, so it cannot be decided` },
  };
}

/**
 * Statements that may change how the server reads later statement text (standard_conforming_strings,
 * client_encoding) or run code that could: the session forwards nothing after one until its
 * ReadyForQuery, so the ParameterStatus check sees the change before any later statement is sent.
 */
/**
 * COPY FROM STDIN: while it runs the server ignores Sync and Flush, so the session must know when it
 * starts and ends before it can pair later answers with later messages (see Session.afterForward).
 */
export function copiesFromClient(s: Statement): boolean {
  return s.kind === 'copy_from' && s.copy?.target === 'stdin';
}

const LEXING_SETTINGS = new Set(['standard_conforming_strings', 'client_encoding']);

export function mayChangeLexing(s: Statement): boolean {
  if (s.opaque) return true;
  if ((s.kind === 'set' || s.kind === 'reset') && s.setting !== undefined && (LEXING_SETTINGS.has(s.setting) || s.setting === 'all')) return true;
  if (s.functions.some((f) => f === 'set_config' || f.endsWith('.set_config'))) {
    // Only these two settings change how PostgreSQL reads statement text; a set_config whose setting
    // name is not a literal could be either. Other names (an application's own `app.tenant`, the
    // role, which policy decides elsewhere) need no barrier.
    const names = s.setConfigNames;
    if (names === undefined || names.some((n) => n === null || LEXING_SETTINGS.has(n))) return true;
  }
  return s.writes.some((w) => w.name === 'pg_settings');
}

const maskedTablesCache = new WeakMap<ReadonlySet<string>, Set<string>>();

/** The tables of `table.column` names; asked per statement, so kept per column set (one per policy). */
function tablesOf(columns: ReadonlySet<string>): Set<string> {
  let t = maskedTablesCache.get(columns);
  if (t === undefined) {
    t = new Set([...columns].map((c) => c.slice(0, c.lastIndexOf('.'))));
    maskedTablesCache.set(columns, t);
  }
  return t;
}

/**
 * A masked reader may read masked tables only through results phigate masks: a statement that
 * copies rows of such a table into another table (CREATE TABLE AS, SELECT INTO, INSERT ... SELECT,
 * UPDATE ... FROM) or to a server-side file or program would leave raw values readable later.
 */
export function copiesMasked(s: Statement, maskedColumns: ReadonlySet<string> | undefined): string | undefined {
  if (!maskedColumns || maskedColumns.size === 0) return undefined;
  const maskedTables = tablesOf(maskedColumns);
  const isMasked = (t: { name: string }): boolean => maskedTables.has(t.name.toLowerCase());
  const same = (a: { schema?: string; name: string }, b: { schema?: string; name: string }): boolean =>
    a.name === b.name && (a.schema ?? 'public') === (b.schema ?? 'public');
  const read = s.tables.filter((t) => isMasked(t) && !s.writes.some((w) => same(w, t)));
  if (read.length === 0) return undefined;
  if (s.copy && s.copy.direction === 'to' && (s.copy.target === 'file' || s.copy.target === 'program')) {
    return `COPY of ${read.map((t) => t.name).join(', ')} to a server-side ${s.copy.target} is not allowed`;
  }
  // Views define a query, not a copy: their rows are masked when read (lineage sees through them).
  if (s.kind === 'create' && (s.ddlObject === 'view')) return undefined;
  const targets = s.writes.filter((w) => !read.some((r) => same(r, w)));
  if (targets.length === 0) return undefined;
  return `copying rows of ${read.map((t) => t.name).join(', ')} into ${targets.map((t) => t.name).join(', ')} is not allowed`;
}
