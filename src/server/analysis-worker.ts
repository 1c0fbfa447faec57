// The analysis worker: runs analyzeText (analysis.ts) for large statement texts on its own thread,
// so parsing them never holds the gateway's event loop. It keeps what the main thread sends once
// (each policy's masking setup, each catalog snapshot) and answers every job with a small plain
// result. Started by AnalysisPool (analysis-pool.ts).
import { parentPort, type MessagePort } from 'node:worker_threads';
import { initClassifier } from '../policy/classify/index.js';
import { createSourceMasking } from '../masking/source/index.js';
import type { SourceMasking } from '../masking/source/index.js';
import { CatalogSnapshot } from './catalog.js';
import { ShapeClassifierCache } from '../policy/shape-cache.js';
import { analyzeText } from './analysis.js';
import type { ToWorker, FromWorker } from './analysis-pool.js';

/** How many setups and snapshots are kept: the pool sends each once, and only the newest matter. */
const KEPT = 8;

if (parentPort === null) throw new Error('analysis-worker.js runs as a worker thread only');
const port: MessagePort = parentPort;

const setups = new Map<number, SourceMasking>();
/** Texts sent again (a client repeating a large statement) are classified once, as on the main thread. */
const classifier = new ShapeClassifierCache();
const snapshots = new Map<number, CatalogSnapshot>();

function keep<V>(m: Map<number, V>, id: number, v: V): void {
  m.set(id, v);
  if (m.size > KEPT) m.delete(m.keys().next().value as number);
}

const ready = initClassifier();

port.on('message', (msg: ToWorker) => {
  void ready.then(() => handle(msg), (err: Error) => {
    if (msg.t === 'analyze') port.postMessage({ job: msg.job, error: `the SQL parser could not load: ${err.message}` } satisfies FromWorker);
  });
});

function handle(msg: ToWorker): void {
  switch (msg.t) {
    case 'setup':
      keep(setups, msg.id, createSourceMasking(msg.config, Buffer.from(msg.tokenKey), new Set(msg.allowed)).masking);
      return;
    case 'snapshot':
      keep(snapshots, msg.id, CatalogSnapshot.fromData(msg.data));
      return;
    case 'analyze': {
      let reply: FromWorker;
      try {
        const masking = msg.setup === undefined ? undefined : setups.get(msg.setup);
        const snapshot = msg.snapshot === undefined ? undefined : snapshots.get(msg.snapshot);
        if ((msg.setup !== undefined && !masking) || (msg.snapshot !== undefined && !snapshot)) throw new Error('the worker lost its masking setup');
        reply = { job: msg.job, analysis: analyzeText(msg.request, { masking, snapshot, classifier }) };
      } catch (err) {
        reply = { job: msg.job, error: (err as Error).message };
      }
      port.postMessage(reply);
    }
  }
}
