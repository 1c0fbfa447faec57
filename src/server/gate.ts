// The statement gate of one session: classifies what the client asks to run and decides it with the
// policy in force, in protocol order (Query; Parse/Bind/Execute). Pure: the session does the I/O.
// Blocks are decided at Query/Parse; approvals hold the message that runs the statement (Query or
// Execute), so a statement prepared once and executed many times needs approval per execution
// unless an approver released it for the whole session.
import type { ErrorFields } from '../pg/index.js';
import { redactLiterals, type Classification, type Statement } from '../policy/classify/index.js';
import type { ShapeClassifierCache } from '../policy/shape-cache.js';
import { decideStatements, type Decision, type DecisionSubject } from '../policy/decide.js';
import type { PolicyFile } from '../policy/file.js';

export type Verdict =
  | { action: 'allow'; decision?: Decision }
  | { action: 'block'; error: ErrorFields; decision?: Decision }
  | { action: 'approve'; decision: Decision; statement: string; fingerprint: string };

interface PreparedEntry {
  /** What running it needs: allow, or an approval for `decision`. */
  verdict: Verdict;
}

const INSUFFICIENT_PRIVILEGE = '42501';

export interface GateOptions {
  policy: () => PolicyFile;
  classifier: Pick<ShapeClassifierCache, 'classify'>;
  connection: string;
  identity: DecisionSubject;
  maskedColumns?: ReadonlySet<string>;
}

export class StatementGate {
  /** Extended-protocol prepared statements by name ('' is the unnamed one). */
  private readonly statements = new Map<string, PreparedEntry>();
  /** Portal name → the statement it was bound from. */
  private readonly portals = new Map<string, string>();
  /** SQL-level PREPARE name → the prepared statement's classification. */
  private readonly sqlPrepared = new Map<string, Statement>();
  /** Fingerprints an approver released for the rest of this session. */
  private readonly releasedForSession = new Set<string>();
  /**
   * Decisions per classification (the cache hands out one frozen object per statement shape) and
   * policy: identity and connection are fixed for the session, so a repeat costs one lookup.
   */
  private decisions = new WeakMap<Classification, Decision>();
  private decidedUnder?: PolicyFile;

  constructor(private readonly opts: GateOptions) {}

  onQuery(sql: string): Verdict {
    return this.judge(sql, this.opts.classifier.classify(sql));
  }

  onParse(name: string, sql: string): Verdict {
    const c = this.opts.classifier.classify(sql);
    if (c.ok && c.statements.length > 1) {
      // PostgreSQL refuses these too; refusing here keeps the gateway and the server in agreement.
      this.statements.delete(name);
      return { action: 'block', error: { severity: 'ERROR', code: '42601', message: 'phigate: cannot insert multiple commands into a prepared statement' } };
    }
    const verdict = this.judge(sql, c);
    if (verdict.action === 'block') {
      this.statements.delete(name);
      return verdict;
    }
    this.statements.set(name, { verdict });
    // Parsing runs nothing: an approval is asked for when the statement is executed.
    return { action: 'allow', decision: verdict.decision };
  }

  onBind(portal: string, statement: string): void {
    this.portals.set(portal, statement);
  }

  onExecute(portal: string): Verdict {
    const statement = this.portals.get(portal);
    const entry = statement === undefined ? undefined : this.statements.get(statement);
    // Unknown portal: PostgreSQL answers with its own error; nothing can run.
    if (!entry) return { action: 'allow' };
    const v = entry.verdict;
    if (v.action === 'approve' && this.releasedForSession.has(v.fingerprint)) return { action: 'allow', decision: v.decision };
    return v;
  }

  onClose(kind: 'S' | 'P', name: string): void {
    if (kind === 'S') this.statements.delete(name);
    else this.portals.delete(name);
  }

  /** An approver approved with scope "session": the same statement text runs without asking again. */
  releaseForSession(fingerprint: string): void {
    this.releasedForSession.add(fingerprint);
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
    const policy = this.opts.policy();
    if (policy !== this.decidedUnder) {
      this.decisions = new WeakMap();
      this.decidedUnder = policy;
    }
    // PREPARE/EXECUTE/DEALLOCATE change or depend on session state: never served from the cache.
    const stateful = c.statements.some((s) => s.kind === 'prepare' || s.kind === 'execute' || s.kind === 'deallocate');
    let decision = stateful ? undefined : this.decisions.get(c);
    if (decision === undefined) {
      const statements = c.statements.map((s) => this.resolvePrepared(s));
      decision = decideStatements(statements, {
        rules: policy.rules, defaultAction: policy.default, connection: this.opts.connection,
        identity: this.opts.identity, maskedColumns: this.opts.maskedColumns,
      });
      if (!stateful) this.decisions.set(c, decision);
    }
    if (decision.action === 'block') {
      return { action: 'block', decision, error: { severity: 'ERROR', code: INSUFFICIENT_PRIVILEGE, message: `phigate: ${decision.reason}` } };
    }
    if (decision.action === 'approve') {
      const fingerprint = c.fingerprint || sql;
      if (this.releasedForSession.has(fingerprint)) return { action: 'allow', decision };
      return { action: 'approve', decision, statement: redactLiterals(sql), fingerprint };
    }
    return { action: 'allow', decision };
  }

  /** EXECUTE name runs what PREPARE name defined: decide that, not the EXECUTE keyword. */
  private resolvePrepared(s: Statement): Statement {
    if (s.kind === 'prepare' && s.preparedName !== undefined) {
      this.sqlPrepared.set(s.preparedName, { ...s, kind: s.prepares ?? 'other' });
      return s;
    }
    if (s.kind === 'deallocate') {
      if (s.preparedName === undefined) this.sqlPrepared.clear();
      else this.sqlPrepared.delete(s.preparedName);
      return s;
    }
    if (s.kind === 'execute' && s.preparedName !== undefined) return this.sqlPrepared.get(s.preparedName) ?? s;
    return s;
  }
}
