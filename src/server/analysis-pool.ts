// Runs the analysis of large statement texts (analysis.ts) on a worker thread, one job at a time in
// arrival order, so the event loop only ever waits for small results. The masking setup of a policy
// and each catalog snapshot are sent to the worker once, when first needed, and named by number
// afterwards. A worker that fails is replaced; the jobs it held fail (the session refuses them).
import { Worker } from 'node:worker_threads';
import type { MaskingConfig } from '../masking/config.js';
import type { CatalogSnapshot, CatalogSnapshotData } from './catalog.js';
import type { AnalysisRequest, TextAnalysis } from './analysis.js';
import type { Logger } from '../common/log.js';

/** What a connection's masking at the source is built from (createSourceMasking's arguments). */
export interface SourceMaskingSpec {
  config: MaskingConfig;
  tokenKey: Buffer;
  allowed: readonly string[];
}

export type ToWorker =
  | { t: 'setup'; id: number; config: MaskingConfig; tokenKey: Uint8Array; allowed: string[] }
  | { t: 'snapshot'; id: number; data: CatalogSnapshotData }
  | { t: 'analyze'; job: number; request: AnalysisRequest; setup?: number; snapshot?: number };

export type FromWorker = { job: number; analysis: TextAnalysis; error?: undefined } | { job: number; error: string; analysis?: undefined };

export interface AnalysisContext {
  /** Needed with request.rewrite. */
  spec?: SourceMaskingSpec;
  /** Needed with request.rewrite or request.lineage. */
  snapshot?: CatalogSnapshot;
}

/** How many snapshots and setups the pool remembers having sent (the worker keeps as many). */
const KEPT = 8;

export class AnalysisPool {
  private worker?: Worker;
  private nextId = 1;
  private nextJob = 1;
  private readonly jobs = new Map<number, { resolve: (a: TextAnalysis) => void; reject: (e: Error) => void }>();
  /** Ids the current worker knows, by object: sent once per worker. */
  private sentSpecs = new Map<SourceMaskingSpec, number>();
  private sentSnapshots = new Map<CatalogSnapshot, number>();
  private closed = false;

  constructor(
    private readonly log?: Logger,
    private readonly url: URL = new URL('./analysis-worker.js', import.meta.url),
  ) {}

  /** Jobs sent and not yet answered. */
  get pending(): number {
    return this.jobs.size;
  }

  analyze(request: AnalysisRequest, ctx: AnalysisContext = {}): Promise<TextAnalysis> {
    if (this.closed) return Promise.reject(new Error('the gateway is shutting down'));
    const w = this.ensureWorker();
    const msg: ToWorker = { t: 'analyze', job: this.nextJob++, request };
    if (request.rewrite && ctx.spec) msg.setup = this.specId(w, ctx.spec);
    if ((request.rewrite || request.lineage) && ctx.snapshot) msg.snapshot = this.snapshotId(w, ctx.snapshot);
    return new Promise<TextAnalysis>((resolve, reject) => {
      this.jobs.set(msg.job, { resolve, reject });
      w.postMessage(msg);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    this.failAll('the gateway is shutting down');
    if (w) await w.terminate();
  }

  private specId(w: Worker, spec: SourceMaskingSpec): number {
    let id = this.sentSpecs.get(spec);
    if (id === undefined) {
      id = this.nextId++;
      w.postMessage({ t: 'setup', id, config: spec.config, tokenKey: new Uint8Array(spec.tokenKey), allowed: [...spec.allowed] } satisfies ToWorker);
      remember(this.sentSpecs, spec, id);
    }
    return id;
  }

  private snapshotId(w: Worker, snapshot: CatalogSnapshot): number {
    let id = this.sentSnapshots.get(snapshot);
    if (id === undefined) {
      id = this.nextId++;
      w.postMessage({ t: 'snapshot', id, data: snapshot.toData() } satisfies ToWorker);
      remember(this.sentSnapshots, snapshot, id);
    }
    return id;
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.url);
    // Idle, it must not keep the process alive.
    w.unref();
    w.on('message', (m: FromWorker) => {
      const job = this.jobs.get(m.job);
      if (!job) return;
      this.jobs.delete(m.job);
      if (m.analysis) job.resolve(m.analysis);
      else job.reject(new Error(m.error));
    });
    const lost = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.sentSpecs = new Map();
      this.sentSnapshots = new Map();
      if (!this.closed) this.log?.error('analysis worker stopped; a new one starts with the next large statement', { error: why });
      this.failAll(why);
    };
    w.on('error', (err) => lost(err.message));
    w.on('exit', (code) => lost(`the analysis worker exited (code ${code})`));
    this.worker = w;
    this.sentSpecs = new Map();
    this.sentSnapshots = new Map();
    return w;
  }

  private failAll(why: string): void {
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const j of jobs) j.reject(new Error(why));
  }
}

function remember<K>(m: Map<K, number>, k: K, id: number): void {
  m.set(k, id);
  if (m.size > KEPT) m.delete(m.keys().next().value as K);
}
