// Runs audit searches and session lists on one worker thread (search-worker.ts), so an auditor's
// search never stalls the gateway's sessions; where the worker's compiled file is not there (tests
// running the TypeScript sources) the same functions run inline.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { listSessions, searchAudit, type SearchFilters, type SearchResult } from './search.js';

type SessionsResult = ReturnType<typeof listSessions>;
type SessionsFilters = Parameters<typeof listSessions>[1];

export type SearchRequest =
  | { id: number; kind: 'search'; auditDir: string; filters: SearchFilters }
  | { id: number; kind: 'sessions'; auditDir: string; filters: SessionsFilters };

export type SearchReply =
  | { id: number; kind: 'search'; result: SearchResult }
  | { id: number; kind: 'sessions'; result: SessionsResult }
  | { id: number; kind: 'error'; message: string };

interface Pending {
  resolve: (r: SearchReply) => void;
  reject: (err: Error) => void;
}

const DEFAULT_WORKER = new URL('./search-worker.js', import.meta.url);

export class SearchThread {
  private worker?: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** False when searches run inline (no compiled worker file). */
  readonly threaded: boolean;

  constructor(private readonly workerFile: URL = DEFAULT_WORKER) {
    this.threaded = existsSync(fileURLToPath(workerFile));
  }

  search(auditDir: string, filters: SearchFilters): Promise<SearchResult> {
    if (!this.threaded) return Promise.resolve(searchAudit(auditDir, filters));
    return this.ask({ id: this.nextId++, kind: 'search', auditDir, filters }).then((r) => (r as Extract<SearchReply, { kind: 'search' }>).result);
  }

  sessions(auditDir: string, filters: SessionsFilters): Promise<SessionsResult> {
    if (!this.threaded) return Promise.resolve(listSessions(auditDir, filters));
    return this.ask({ id: this.nextId++, kind: 'sessions', auditDir, filters }).then((r) => (r as Extract<SearchReply, { kind: 'sessions' }>).result);
  }

  /** Stops the worker; searches still waiting fail. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new Error('the gateway is shutting down'));
    if (w) await w.terminate();
  }

  private ask(req: SearchRequest): Promise<SearchReply> {
    if (this.closed) return Promise.reject(new Error('the gateway is shutting down'));
    const w = this.start();
    return new Promise<SearchReply>((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      w.postMessage(req);
    }).then((r) => {
      if (r.kind === 'error') throw new Error(r.message);
      return r;
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.workerFile);
    // Idle, it must not keep the process alive; searches in flight hold it (see ask).
    w.unref();
    w.on('message', (r: SearchReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      p.resolve(r);
    });
    const lost = (err: Error): void => {
      if (this.worker !== w) return;
      // The next search starts a new worker; the ones in flight are answered with the reason.
      this.worker = undefined;
      this.failAll(err);
    };
    w.on('error', (err) => lost(new Error(`audit search failed: ${err.message}`)));
    w.on('exit', (code) => lost(new Error(`audit search worker stopped (exit code ${code})`)));
    this.worker = w;
    return w;
  }

  private failAll(err: Error): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(err);
  }
}
