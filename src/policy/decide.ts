// Statement-level decisions: rules are evaluated first-match per statement; a query string's
// decision is the most restrictive of its statements' (block > approve > allow). Pure.
import type { IdentityKind, Rule, RuleAction, StatementKindName, TablePattern } from './rules.js';
import { baselineRefusal, type BaselineFacts, type ServerAccess } from './server-access.js';

/** What decisions need from the classifier's output (see classify/), and reach.ts's additions. */
export interface ClassifiedStatement extends BaselineFacts {
  kind: string;
  /** DO and CALL: code the classifier cannot see into. */
  opaque?: boolean;
  /**
   * The statement may write any table (reach.ts: a volatile user-defined function, an INSTEAD OF
   * trigger, a relation the catalog does not know): the strictest applicable rule decides, as for DO.
   */
  opaqueReason?: string;
  /** The statement reaches a rewrite rule, whose actions may be any kind of write (reach.ts). */
  writesAnyKind?: boolean;
  tables: readonly { schema?: string; name: string }[];
  writes: readonly { schema?: string; name: string }[];
  modifiesData: boolean;
  withoutWhere: boolean;
  functions: readonly string[];
  predicateColumns: readonly { table?: string; column: string }[];
}

export interface DecisionSubject {
  name: string;
  subject: string;
  groups: readonly string[];
  kind: IdentityKind;
}

export interface DecisionInput {
  rules: readonly Rule[];
  defaultAction: 'allow' | 'block';
  connection: string;
  identity: DecisionSubject;
  /** `table.column` (lower case) of every masked column, for predicates_on_masked. */
  maskedColumns?: ReadonlySet<string>;
  /** Lifts of the server-access baseline (policy `server_access:`); absent: lifted for nobody. */
  serverAccess?: ServerAccess;
}

export interface Decision {
  action: RuleAction;
  /** The deciding rule; absent when the default decided. */
  rule?: string;
  /** Why, in words fit for the client's error message and the audit record. */
  reason: string;
  approvers?: readonly string[];
  timeoutMs?: number;
  /** Index of the statement that decided (for multi-statement query strings). */
  statementIndex?: number;
  /** Every relation the query string touches, for approval requests and evidence. */
  tables: string[];
  kinds: string[];
}

const WRITE_KINDS: readonly StatementKindName[] = ['insert', 'update', 'delete', 'merge'];
/** Kinds whose statement can carry a data-modifying CTE. */
const READ_KINDS: readonly string[] = ['select', 'copy_to', 'declare'];
const SEVERITY: Record<RuleAction, number> = { allow: 0, approve: 1, block: 2 };

export function decideStatements(statements: readonly ClassifiedStatement[], input: DecisionInput): Decision {
  const tables = [...new Set(statements.flatMap((s) => s.tables.map(tableName)))];
  const kinds = [...new Set(statements.map((s) => s.kind))];
  let worst: Decision = { action: 'allow', reason: 'no statements', tables, kinds };
  statements.forEach((st, i) => {
    const d = decideOne(st, input);
    if (i === 0 || SEVERITY[d.action] > SEVERITY[worst.action]) worst = { ...d, statementIndex: i, tables, kinds };
  });
  return worst;
}

function decideOne(st: ClassifiedStatement, input: DecisionInput): Omit<Decision, 'tables' | 'kinds'> {
  // The baseline comes before every rule: no rule can allow what it withholds, only server_access can.
  const refused = baselineRefusal(st, input.identity.groups, input.serverAccess);
  if (refused) return { action: 'block', rule: `server_access.${refused.capability}`, reason: refused.reason };
  // CALL runs a procedure the database's owners defined (like SELECT f()); DO runs the client's own
  // code. A CALL of a volatile procedure the policy does not declare read-only arrives opaque (reach.ts).
  if (st.kind === 'do') return decideOpaque(input, 'a DO block may run anything');
  if (st.opaqueReason !== undefined) return decideOpaque(input, st.opaqueReason);
  for (const rule of input.rules) {
    if (!matches(rule, st, input)) continue;
    return verdictOf(rule);
  }
  return defaultVerdict(input);
}

/**
 * A DO block (or a name so often re-prepared it could be anything, or a statement that reaches code
 * phigate cannot see) may run any statement on any table, so it meets the strictest rule that
 * applies to this identity and connection, whatever the rules' statement, table and WHERE conditions say.
 */
function decideOpaque(input: DecisionInput, why: string): Omit<Decision, 'tables' | 'kinds'> {
  let worst = defaultVerdict(input);
  for (const rule of input.rules) {
    if (!identityMatches(rule, input)) continue;
    const v = verdictOf(rule);
    if (SEVERITY[v.action] > SEVERITY[worst.action]) worst = v;
  }
  if (worst.action !== 'allow') worst = { ...worst, reason: `${worst.reason} (${why}, so the strictest applicable rule decides)` };
  return worst;
}

function verdictOf(rule: Rule): Omit<Decision, 'tables' | 'kinds'> {
  const base = { action: rule.action, rule: rule.name };
  if (rule.action === 'block') return { ...base, reason: `blocked by rule "${rule.name}"${rule.message ? `: ${rule.message}` : ''}` };
  if (rule.action === 'approve') {
    return {
      ...base, approvers: rule.approvers, timeoutMs: rule.timeoutMs,
      reason: `rule "${rule.name}" requires approval by ${rule.approvers?.join(' or ')}${rule.message ? `: ${rule.message}` : ''}`,
    };
  }
  return { ...base, reason: `allowed by rule "${rule.name}"` };
}

function defaultVerdict(input: DecisionInput): Omit<Decision, 'tables' | 'kinds'> {
  return input.defaultAction === 'block'
    ? { action: 'block', reason: 'no rule allows this statement (default: block)' }
    : { action: 'allow', reason: 'default: allow' };
}

function identityMatches(rule: Rule, input: DecisionInput): boolean {
  const w = rule.when;
  if (w.connections && !w.connections.includes(input.connection)) return false;
  if (w.groups && !w.groups.some((g) => input.identity.groups.includes(g))) return false;
  if (w.users && !w.users.includes(input.identity.name) && !w.users.includes(input.identity.subject)) return false;
  if (w.identityKinds && !w.identityKinds.includes(input.identity.kind)) return false;
  return true;
}

function matches(rule: Rule, st: ClassifiedStatement, input: DecisionInput): boolean {
  const w = rule.when;
  if (!identityMatches(rule, input)) return false;
  if (w.statement && !kindMatches(w.statement, st)) return false;
  if (w.tables && !st.tables.some((t) => w.tables!.some((p) => tableMatches(p, t)))) return false;
  if (w.withoutWhere !== undefined && st.withoutWhere !== w.withoutWhere) return false;
  if (w.functions && !st.functions.some((f) => w.functions!.some((p) => functionMatches(p, f)))) return false;
  if (w.predicatesOnMasked !== undefined) {
    const masked = input.maskedColumns ?? new Set<string>();
    const onMasked = st.predicateColumns.some((c) => predicateOnMasked(c, masked));
    if (onMasked !== w.predicatesOnMasked) return false;
  }
  return true;
}

function kindMatches(kinds: ReadonlySet<StatementKindName>, st: ClassifiedStatement): boolean {
  if (kinds.has(st.kind as StatementKindName)) return true;
  // A cursor is a SELECT read in pieces: DECLARE c CURSOR FOR SELECT ... must meet the SELECT rules.
  if (st.kind === 'declare' && kinds.has('select')) return true;
  // A rewrite rule the write reaches (ON INSERT ... DO ALSO DELETE ...) may run any kind of write.
  if (st.writesAnyKind && WRITE_KINDS.some((k) => kinds.has(k))) return true;
  // MERGE inserts, updates and deletes: any rule about those kinds is about MERGE too.
  if (st.kind === 'merge' && WRITE_KINDS.some((k) => k !== 'merge' && kinds.has(k))) return true;
  // A read that modifies data through a CTE (WITH d AS (DELETE ...) SELECT ...) counts as every
  // write kind: the classifier does not say which, and over-matching errs on the safe side.
  return READ_KINDS.includes(st.kind) && st.writes.length > 0 && WRITE_KINDS.some((k) => kinds.has(k));
}

/** Unqualified names in statements resolve through search_path, which is `public` unless changed. */
export function tableMatches(p: TablePattern, t: { schema?: string; name: string }): boolean {
  if (p.name !== '*' && p.name !== t.name) return false;
  if (p.schema === undefined) return true;
  return p.schema === (t.schema ?? 'public');
}

function functionMatches(pattern: string, fn: string): boolean {
  if (pattern === fn) return true;
  const bare = fn.slice(fn.lastIndexOf('.') + 1);
  return !pattern.includes('.') && pattern === bare;
}

function predicateOnMasked(c: { table?: string; column: string }, masked: ReadonlySet<string>): boolean {
  const col = c.column.toLowerCase();
  if (c.table) return masked.has(`${c.table.toLowerCase()}.${col}`);
  // An unqualified column could belong to any table in the statement: match by column name.
  for (const m of masked) if (m.endsWith(`.${col}`)) return true;
  return false;
}

export function tableName(t: { schema?: string; name: string }): string {
  return t.schema ? `${t.schema}.${t.name}` : t.name;
}
