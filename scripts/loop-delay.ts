// Preloaded into a benchmarked gateway (`node --import .../loop-delay.js`): samples the event loop's
// delay (perf_hooks monitorEventLoopDelay) and, on each SIGUSR2, prints `loop-delay#N {max_ms, p99_ms,
// mean_ms}` on stdout for the interval since the previous one, so a benchmark can read the longest
// stall of the process it drives.
import { monitorEventLoopDelay } from 'node:perf_hooks';

const h = monitorEventLoopDelay({ resolution: 5 });
h.enable();
let n = 0;
process.on('SIGUSR2', () => {
  const ms = (ns: number): number => Number((ns / 1e6).toFixed(1));
  process.stdout.write(`loop-delay#${++n} ${JSON.stringify({ max_ms: ms(h.max), p99_ms: ms(h.percentile(99)), mean_ms: ms(h.mean) })}\n`);
  h.reset();
});
