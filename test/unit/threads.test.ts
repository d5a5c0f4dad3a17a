// The worker-thread pool (server/src/threads): large products and scalings split over threads
// give the results of one thread. Moved from engine.test.ts: the engine itself is single-threaded.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpuBackend } from '../../server/src/compute/cpuBackend';
import { applyScales, unitScales } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { mlp } from '../../server/src/examples/networks';
import { maxRelDiff } from './helpers';

describe('compute threads', () => {
  it('split large products over workers with the same results as one thread', async () => {
    process.env.SYNBAL_THREADS ??= '2';
    const { fused } = await import('../../server/src/engine/costStorage');
    const { canParallelize, costProductsThreaded: costProducts, threadCount } = await import('../../server/src/threads/parallel');
    const { allocate } = await import('../../server/src/tensor/dtype');
    const nT = 2051;
    const nS = 2048;
    const data = allocate('float32', nT * nS) as Float32Array;
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
    assert.ok(data.buffer instanceof SharedArrayBuffer, 'large tensors live in shared memory');
    const x = Float64Array.from({ length: nS }, (_, i) => 1 + (i % 7) / 10);
    const y = Float64Array.from({ length: nT }, (_, i) => 1 + (i % 5) / 10);
    for (const p of [1, 2] as const) {
      const storage = { kind: 'weights' as const, nT, nS, p, data, base: 0, sa: nS, sb: 1 };
      const row = new Float64Array(nT);
      const col = new Float64Array(nS);
      costProducts(storage, x, y, row, col);
      const row1 = new Float64Array(nT);
      const col1 = new Float64Array(nS);
      fused(data, 0, nT, nS, p, x, y, row1, col1);
      assert.ok(maxRelDiff(row, row1) < 1e-12 && maxRelDiff(col, col1) < 1e-12);
    }
    // On a machine with one core there is nothing to split; the products above still agree.
    if (threadCount() > 1) assert.ok(canParallelize(data, nT * nS));
  });

  it('write large scaled weights over workers: w·Λ_target/Λ_source, element by element', () => {
    const net = mlp({ sizes: [16, 2048, 2048, 4], dtype: 'float32', seed: 9 });
    const problem = compile(net, lp(2), cpuBackend);
    const r = balance(problem);
    const lambda = unitScales(problem, r.x);
    const w = net.tensors.find((t) => t.name === 'fc2.weight')!;
    assert.ok(w.data.buffer instanceof SharedArrayBuffer);
    const out = applyScales(problem, r.x).tensors.find((t) => t.name === 'fc2.weight')!;
    const h1 = problem.groupOffset[1];
    const h2 = problem.groupOffset[2];
    for (const [a, b] of [[0, 0], [7, 2047], [1500, 3], [2047, 1024]]) {
      const expected = Math.fround(w.data[a * 2048 + b] * (lambda[h2 + a] / lambda[h1 + b]));
      assert.ok(Math.abs(out.data[a * 2048 + b] - expected) <= 1e-6 * Math.abs(expected), `(${a}, ${b})`);
    }
  });
});
