// The `rules:` section of the policy file: parsed into typed rules with errors that name the line.
// Matching and decisions live in decide.ts; this file only says what a valid rule is.
import { isSeq, type Node } from 'yaml';
import type { Reader } from './yaml-reader.js';
import { parseDuration } from './duration.js';

export type RuleAction = 'allow' | 'block' | 'approve';
export type IdentityKind = 'human' | 'service' | 'agent';

/** Statement kinds a rule may name (the classifier's kinds), plus shorthands. */
export const STATEMENT_KINDS = [
  'select', 'insert', 'update', 'delete', 'merge', 'copy_to', 'copy_from',
  'create', 'alter', 'drop', 'truncate', 'comment', 'grant', 'revoke', 'reindex', 'vacuum', 'analyze', 'cluster', 'refresh',
  'set', 'reset', 'show', 'begin', 'commit', 'rollback', 'savepoint', 'release', 'prepare_transaction',
  'prepare', 'execute', 'deallocate', 'declare', 'fetch', 'close', 'move', 'listen', 'notify', 'unlisten',
  'call', 'do', 'lock', 'discard', 'load', 'checkpoint', 'explain', 'set_role', 'set_session_authorization', 'other',
] as const;
export type StatementKindName = (typeof STATEMENT_KINDS)[number];

export const KIND_ALIASES: Record<string, readonly StatementKindName[]> = {
  ddl: ['create', 'alter', 'drop', 'truncate', 'comment', 'reindex', 'cluster', 'refresh'],
  write: ['insert', 'update', 'delete', 'merge', 'copy_from', 'truncate'],
  read: ['select', 'copy_to', 'fetch'],
  transaction: ['begin', 'commit', 'rollback', 'savepoint', 'release', 'prepare_transaction'],
  privilege: ['grant', 'revoke', 'set_role', 'set_session_authorization'],
};

export interface TablePattern {
  schema?: string;
  name: string;
}

export interface RuleCondition {
  statement?: ReadonlySet<StatementKindName>;
  tables?: readonly TablePattern[];
  withoutWhere?: boolean;
  groups?: readonly string[];
  users?: readonly string[];
  identityKinds?: readonly IdentityKind[];
  connections?: readonly string[];
  functions?: readonly string[];
  predicatesOnMasked?: boolean;
}

export interface Rule {
  name: string;
  when: RuleCondition;
  action: RuleAction;
  message?: string;
  approvers?: readonly string[];
  timeoutMs?: number;
}

export const DEFAULT_APPROVAL_TIMEOUT_MS = 15 * 60_000;
const RULE_KEYS = new Set(['name', 'when', 'action', 'message', 'approvers', 'timeout']);
const WHEN_KEYS = new Set(['statement', 'tables', 'without_where', 'groups', 'users', 'identity_kind', 'connections', 'functions', 'predicates_on_masked']);

/** `patients`, `public.patients`, `"My Table"`: unquoted parts fold to lower case as PostgreSQL does. */
export function parseTablePattern(text: string): TablePattern | undefined {
  const parts: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*|\*))\s*(\.|$)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    parts.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!.toLowerCase());
    pos = re.lastIndex;
    if (m[3] === '') break;
  }
  if (parts.length === 1) return { name: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, name: parts[1]! };
  return undefined;
}

export function parseRules(r: Reader, node: Node | null | undefined): Rule[] {
  if (node === undefined || node === null) return [];
  if (!isSeq(node)) r.fail(node, 'rules', 'expected a list of rules');
  const seen = new Set<string>();
  return node.items.map((item, i) => {
    const key = `rules[${i}]`;
    const m = r.map(item as Node, key, RULE_KEYS);
    const name = r.string(m.get('name'), `${key}.name`);
    if (seen.has(name)) r.fail(m.get('name'), `${key}.name`, `duplicate rule name "${name}"`);
    seen.add(name);
    const rkey = `rules.${name}`;
    const action = r.oneOf(m.get('action'), `${rkey}.action`, ['allow', 'block', 'approve'] as const);
    const rule: Rule = { name, action, when: m.has('when') ? parseWhen(r, m.get('when'), `${rkey}.when`) : {} };
    if (m.has('message')) rule.message = r.string(m.get('message'), `${rkey}.message`);
    if (action === 'approve') {
      rule.approvers = r.strings(m.get('approvers'), `${rkey}.approvers`);
      if (rule.approvers.length === 0) r.fail(m.get('approvers'), `${rkey}.approvers`, 'an approve rule needs at least one approver group');
      const t = m.get('timeout');
      if (m.has('timeout')) {
        const ms = parseDuration(r.string(t, `${rkey}.timeout`));
        if (ms === undefined) r.fail(t, `${rkey}.timeout`, 'expected a duration such as 90s, 15m or 1h');
        rule.timeoutMs = ms;
      } else {
        rule.timeoutMs = DEFAULT_APPROVAL_TIMEOUT_MS;
      }
    } else {
      for (const k of ['approvers', 'timeout']) {
        if (m.has(k)) r.fail(m.get(k), `${rkey}.${k}`, `only approve rules take ${k}`);
      }
    }
    return rule;
  });
}

function parseWhen(r: Reader, node: Node | null | undefined, key: string): RuleCondition {
  const m = r.map(node, key, WHEN_KEYS);
  const when: RuleCondition = {};
  if (m.has('statement')) {
    const kinds = new Set<StatementKindName>();
    r.strings(m.get('statement'), `${key}.statement`).forEach((k, i) => {
      const alias = KIND_ALIASES[k];
      if (alias) alias.forEach((a) => kinds.add(a));
      else if ((STATEMENT_KINDS as readonly string[]).includes(k)) kinds.add(k as StatementKindName);
      else r.fail(itemAt(m.get('statement'), i), `${key}.statement`, `unknown statement kind "${k}"; expected one of ${[...Object.keys(KIND_ALIASES), ...STATEMENT_KINDS].join(', ')}`);
    });
    when.statement = kinds;
  }
  if (m.has('tables')) {
    when.tables = r.strings(m.get('tables'), `${key}.tables`).map((t, i) => {
      const p = parseTablePattern(t);
      if (!p) r.fail(itemAt(m.get('tables'), i), `${key}.tables`, `"${t}" is not a table name (table, schema.table, or "Quoted")`);
      return p;
    });
  }
  for (const [yamlKey, prop] of [['without_where', 'withoutWhere'], ['predicates_on_masked', 'predicatesOnMasked']] as const) {
    if (m.has(yamlKey)) when[prop] = r.boolean(m.get(yamlKey), `${key}.${yamlKey}`);
  }
  if (m.has('groups')) when.groups = r.strings(m.get('groups'), `${key}.groups`);
  if (m.has('users')) when.users = r.strings(m.get('users'), `${key}.users`);
  if (m.has('connections')) when.connections = r.strings(m.get('connections'), `${key}.connections`);
  if (m.has('functions')) when.functions = r.strings(m.get('functions'), `${key}.functions`).map((f) => f.toLowerCase());
  if (m.has('identity_kind')) {
    const kinds = r.strings(m.get('identity_kind'), `${key}.identity_kind`);
    kinds.forEach((k, i) => {
      if (!['human', 'service', 'agent'].includes(k)) r.fail(itemAt(m.get('identity_kind'), i), `${key}.identity_kind`, `expected human, service or agent, got "${k}"`);
    });
    when.identityKinds = kinds as IdentityKind[];
  }
  return when;
}

function itemAt(node: Node | null | undefined, i: number): Node | undefined {
  return isSeq(node) ? (node.items[i] as Node | undefined) : undefined;
}
