// Requests keep being answered while a large model is analysed and solved in the workers.
// No wall-clock threshold (that would flake on a busy machine): a request is compared with
// the analysis it runs beside — blocked behind it, it would take about as long. The figures
// for the 70M-parameter case are measured by `npm run bench`.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { measureLatency } from './latency';

it('answers hover, code actions, listings, symbols and lenses while a large model is analysed and solved', async (t) => {
  // Large enough that the analysis outlasts the half second before work-done progress shows, on any machine.
  const r = await measureLatency([784, 4096, 4096, 4096, 10]);
  const phases = { duringAnalysis: r.analysisMs as number, duringSolve: r.resolveNetworkMs as number };
  for (const [phase, busyMs] of Object.entries(phases)) {
    for (const [kind, s] of Object.entries(r[phase] as Record<string, { n: number; p50: number; p95: number; max: number }>)) {
      t.diagnostic(`${phase} (${busyMs.toFixed(0)} ms) ${kind}: n=${s.n} p50 ${s.p50.toFixed(1)} p95 ${s.p95.toFixed(1)} max ${s.max.toFixed(1)} ms`);
      assert.ok(s.n > 0, `${phase} ${kind}: no requests were answered meanwhile`);
      assert.ok(s.p95 < busyMs / 10, `${phase} ${kind}: p95 ${s.p95.toFixed(1)} ms is not small beside ${busyMs.toFixed(0)} ms of work`);
    }
  }
  assert.ok(r.analysisProgress, 'the long analysis showed work-done progress');
});
