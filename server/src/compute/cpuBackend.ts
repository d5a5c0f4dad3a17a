// The CPU backend the front ends use: the engine's kernels on typed arrays in this process,
// float64 accumulation, large blocks spread over worker threads (threads/parallel.ts).
// Nothing is uploaded. (The engine's own default, inProcessBackend, is the same on one thread.)
import type { ComputeBackend, ProductJob, ScaleJob } from '../engine/computeBackend';
import { scaleRows } from '../engine/scaleRows';
import { costProductsThreaded, scaleParallel } from '../threads/parallel';

class CpuBackend implements ComputeBackend {
  readonly name = 'cpu';
  readonly device = 'cpu';

  // Named without starting the thread pool: a small model never needs it.
  readonly description = 'cpu (typed arrays, worker threads for large blocks)';

  load(): void {}

  products(jobs: readonly ProductJob[]): void {
    for (const j of jobs) costProductsThreaded(j.cost, j.x, j.y, j.row, j.col);
  }

  scale(j: ScaleJob): void {
    if (!scaleParallel(j.src, j.dst, j.base, j.sa, j.nT, j.nC, j.ft, j.fs)) scaleRows(j.src, j.dst, j.base, j.sa, j.nC, 0, j.nT, j.ft, j.fs);
  }

  setCancel(): void {}

  dispose(): void {}
}

/** One instance serves every problem: it holds no state. */
export const cpuBackend: ComputeBackend = new CpuBackend();
