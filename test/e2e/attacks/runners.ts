// Drivers that send the attacks through real clients over one long-lived connection each, and keep
// every byte that came back: node-postgres in text (simple protocol) and binary (extended protocol)
// format with a tap on the socket, psql (one process, the attacks as one script), psycopg 3.
// Between attacks a client rolls back and runs DISCARD ALL, so one attack's settings, locks, cursors
// and LISTENs never help the next; a connection the gateway ends is reopened for the next attack.
import { Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { psqlArgs, runCmd } from '../../support/clients.js';
import type { Step } from './families.js';

/** What one statement gave, as far as a client library reports it. */
export interface StepResult {
  tag?: string;
  fields?: string[];
  rows?: unknown[][];
  copy?: string;
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
  position?: string;
}

export interface Outcome {
  steps: StepResult[];
  notices: string[];
  notifications: string[];
  /** Every byte the server side sent while the attack ran (node-postgres), or the client's whole output. */
  bytes: Buffer;
  /** The connection was lost during the attack (the gateway ended the session). */
  lost: boolean;
}

const RAW_TYPES = { getTypeParser: () => (v: unknown) => v };
const STEP_TIMEOUT_MS = 30_000;

export interface NodeTarget {
  port: number;
  host?: string;
  user?: string;
  password?: string;
  database?: string;
  /** libpq-style options, e.g. `-c search_path=maskref,public` for the reference model. */
  options?: string;
}

/** A node-postgres connection whose received bytes are all kept. */
export class NodeSession {
  private client?: pg.Client;
  private chunks: Buffer[] = [];
  private dead = true;
  private notices: string[] = [];
  private notifications: string[] = [];
  private copy: Buffer[] = [];

  constructor(private readonly target: NodeTarget, readonly binary: boolean) {}

  private async connect(): Promise<void> {
    const sock = new Socket();
    sock.on('data', (d: Buffer) => this.chunks.push(d));
    const c = new pg.Client({
      host: this.target.host ?? '127.0.0.1', port: this.target.port, user: this.target.user ?? 'alice', database: this.target.database ?? 'ehr',
      password: this.target.password, options: this.target.options, stream: () => sock,
    } as pg.ClientConfig);
    c.on('error', () => (this.dead = true));
    c.on('end', () => (this.dead = true));
    c.on('notice', (n) => this.notices.push(JSON.stringify({ severity: n.severity, code: n.code, message: n.message, detail: n.detail, hint: n.hint, where: n.where })));
    c.on('notification', (n) => this.notifications.push(`${n.channel}:${n.payload ?? ''}`));
    await c.connect();
    (c as unknown as { connection: { on(ev: string, f: (m: { chunk: Buffer }) => void): void } }).connection.on('copyData', (m) => this.copy.push(m.chunk));
    this.client = c;
    this.dead = false;
  }

  private config(step: Step): pg.QueryConfig {
    const text = typeof step === 'string' ? step : step.text;
    const values = typeof step === 'string' ? undefined : step.values;
    // A named statement is prepared with a protocol-level Parse (node-postgres), under that name.
    const name = typeof step === 'string' ? undefined : step.name;
    const base = { text, rowMode: 'array', types: RAW_TYPES, ...(name === undefined ? {} : { name }) } as pg.QueryConfig;
    if (this.binary) return { ...base, values: values ?? [], binary: true, queryMode: 'extended' } as pg.QueryConfig;
    return values ? { ...base, values } : base;
  }

  private async one(step: Step): Promise<StepResult[]> {
    const c = this.client!;
    this.copy = [];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(Object.assign(new Error(`no answer in ${STEP_TIMEOUT_MS} ms`), { code: 'timeout' })), STEP_TIMEOUT_MS);
    });
    try {
      const res = (await Promise.race([c.query(this.config(step)), timeout])) as pg.QueryResult | pg.QueryResult[];
      const copy = this.copy.length ? Buffer.concat(this.copy).toString('latin1') : undefined;
      return (Array.isArray(res) ? res : [res]).map((r) => ({
        tag: `${r.command ?? ''} ${r.rowCount ?? ''}`.trim(), fields: r.fields?.map((f) => f.name), rows: r.rows as unknown[][], ...(copy === undefined ? {} : { copy }),
      }));
    } catch (err) {
      const e = err as pg.DatabaseError & { code?: string };
      if (e.code === 'timeout') {
        this.dead = true;
        (c as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
      }
      return [{ code: e.code ?? 'client-error', message: e.message, detail: e.detail, hint: e.hint, position: e.position }];
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs one attack's statements in order, then cleans the session up. */
  async run(steps: Step[]): Promise<Outcome> {
    if (this.dead) {
      await this.client?.end().catch(() => {});
      this.chunks = [];
      await this.connect();
    }
    this.chunks = [];
    this.notices = [];
    this.notifications = [];
    const out: StepResult[] = [];
    let lost = false;
    for (const step of steps) {
      out.push(...(await this.one(step)));
      if (this.dead) {
        lost = true;
        break;
      }
    }
    if (!this.dead) {
      // notifications and notices of the attack arrive at the latest before these answers
      await this.one('ROLLBACK');
      await this.one('DISCARD ALL');
      if (this.dead) lost = true;
    }
    return { steps: out, notices: this.notices, notifications: this.notifications, bytes: Buffer.concat(this.chunks), lost };
  }

  async close(): Promise<void> {
    await this.client?.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// psql

export interface ScriptItem {
  key: string;
  steps: string[];
}

export interface TextOutcome {
  stdout: string;
  stderr: string;
  /** The client's process ended before the attack finished. */
  lost: boolean;
}

const marker = (key: string, what: 'B' | 'E'): string => `@@ATTACK ${key} ${what}@@`;

function section(text: string, key: string): { body: string; ended: boolean } | undefined {
  const b = text.indexOf(marker(key, 'B'));
  if (b < 0) return undefined;
  const start = b + marker(key, 'B').length;
  const e = text.indexOf(marker(key, 'E'), start);
  return { body: text.slice(start, e < 0 ? undefined : e), ended: e >= 0 };
}

/** Runs the items as one psql script (reopening psql after one that ended it), output cut per item. */
export async function runPsql(port: number, items: ScriptItem[]): Promise<Map<string, TextOutcome>> {
  const results = new Map<string, TextOutcome>();
  let todo = items;
  while (todo.length > 0) {
    const script = ['\\set VERBOSITY verbose', '\\set ON_ERROR_STOP 0'];
    for (const it of todo) {
      script.push(`\\echo ${marker(it.key, 'B')}`, `\\warn ${marker(it.key, 'B')}`);
      for (const s of it.steps) script.push(/;\s*$/.test(s) ? s : `${s};`);
      script.push('ROLLBACK;', 'DISCARD ALL;', `\\echo ${marker(it.key, 'E')}`, `\\warn ${marker(it.key, 'E')}`);
    }
    const r = await runCmd('psql', psqlArgs(port, ['-A', '-v', 'ON_ERROR_STOP=0', '-f', '-']), { input: script.join('\n') + '\n', timeoutMs: 170_000 });
    const next: ScriptItem[] = [];
    for (const it of todo) {
      const out = section(r.stdout, it.key);
      const err = section(r.stderr, it.key);
      if (!out && !err) {
        next.push(it);
        continue;
      }
      const ended = Boolean(out?.ended && err?.ended);
      results.set(it.key, { stdout: out?.body ?? '', stderr: err?.body ?? '', lost: !ended });
    }
    // the item that ended psql was recorded as lost; the ones after it run in a new process
    if (next.length === todo.length) {
      for (const it of next) results.set(it.key, { stdout: '', stderr: `psql never ran this: ${r.stderr.slice(-500)}`, lost: true });
      break;
    }
    todo = next;
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// psycopg 3

/** Debian's interpreter, whose python3-psycopg scripts/test-prereqs.mjs checks and installs. */
export const PYTHON = '/usr/bin/python3';
const PSYCOPG_SCRIPT = join(import.meta.dirname, 'psycopg_runner.py');

export interface PsycopgItem {
  key: string;
  steps: Step[];
}

export interface PsycopgOutcome {
  steps: StepResult[];
  notices: string[];
  notifications: string[];
  lost: boolean;
  /** Everything psycopg reported for the attack, as JSON: what the leak check reads. */
  text: string;
}

/** Runs the items through psycopg 3 on one connection (reopened after one the gateway ended). */
export async function runPsycopg(port: number, items: PsycopgItem[], binary: boolean): Promise<Map<string, PsycopgOutcome>> {
  const input = JSON.stringify({ port, binary, items: items.map((i) => ({ key: i.key, steps: i.steps.map((s) => (typeof s === 'string' ? { text: s } : s)) })) });
  const r = await runCmd(PYTHON, [PSYCOPG_SCRIPT], { input, timeoutMs: 170_000 });
  if (r.code !== 0) throw new Error(`psycopg runner failed (${r.code}): ${r.stderr.slice(-2000)}`);
  const parsed = JSON.parse(r.stdout) as Record<string, Omit<PsycopgOutcome, 'text'>>;
  const out = new Map<string, PsycopgOutcome>();
  for (const [key, v] of Object.entries(parsed)) out.set(key, { ...v, text: JSON.stringify(v) });
  return out;
}
