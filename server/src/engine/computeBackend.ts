// The seam between the solvers and the work that touches every weight. The solvers stay the
// same for every backend; a backend owns the cost matrices (resident on its device once
// loaded), the fused products C·x and Cᵀ·y that every iteration needs, and the final write of
// scaled weights. The engine runs on `inProcessBackend` (below) unless a problem is given
// another: the adapters (the threaded CPU, torch, onnxruntime, tfjs) live in compute/.
import { costProducts, type CostStorage } from './costStorage';
import { scaleRows } from './scaleRows';

/** One block's products: row = C·x (when x is given) and col = Cᵀ·y (when y is given). */
export interface ProductJob {
  cost: CostStorage;
  x: Float64Array | null;
  y: Float64Array | null;
  row: Float64Array;
  col: Float64Array;
}

/**
 * dst[base + a·sa + b] = src[base + a·sa + b]·ft[a]·fs[b] for a < nT, b < nC: a row-major
 * block of float weights written with its final scales. `cost` names the block's resident
 * cost storage when it is a view of these same weights (a device backend may scale its copy).
 */
export interface ScaleJob {
  src: Float32Array | Float64Array;
  dst: Float32Array | Float64Array;
  base: number;
  sa: number;
  nT: number;
  nC: number;
  ft: Float64Array;
  fs: Float64Array;
  cost?: CostStorage;
}

export interface ComputeBackend {
  /** Which backend this is: `cpu`, or an adapter's name (compute/backend.ts, BackendName). */
  readonly name: string;
  /** Where the kernels run: `cpu`, `cuda`, `cuda:1`, `mps`. */
  readonly device: string;
  /** One line for progress messages and reports, e.g. `torch 2.3.1 on cuda (NVIDIA H100)`. */
  readonly description: string;
  /**
   * Makes these cost blocks resident (a device backend uploads them once, in one batch, and
   * forgets blocks of an earlier problem). Products of blocks never loaded load them first.
   */
  load(costs: readonly CostStorage[]): void;
  /** All jobs in one round trip; every output is overwritten (float64 accumulation). */
  products(jobs: readonly ProductJob[]): void;
  scale(job: ScaleJob): void;
  /**
   * While set, long waits on the device poll this; when it answers true the request is
   * abandoned, the worker process is killed (and reaped) and ComputeCancelled is thrown.
   */
  setCancel(cancelled: (() => boolean) | undefined): void;
  /** Frees device memory and stops worker processes; the backend is unusable afterwards. */
  dispose(): void;
}

/** Thrown out of a backend call that was cancelled through setCancel. */
export class ComputeCancelled extends Error {
  constructor(backend: string) {
    super(`${backend}: cancelled`);
    this.name = 'ComputeCancelled';
  }
}

/**
 * The engine's default: the kernels on typed arrays on the calling thread, float64
 * accumulation, nothing uploaded, no I/O. Front ends that want every core pass compute's
 * threaded `cpuBackend` instead (compile's `compute`, attachCompute).
 */
class InProcessBackend implements ComputeBackend {
  readonly name = 'cpu';
  readonly device = 'cpu';
  readonly description = 'cpu (typed arrays, one thread)';

  load(): void {}

  products(jobs: readonly ProductJob[]): void {
    for (const j of jobs) costProducts(j.cost, j.x, j.y, j.row, j.col);
  }

  scale(j: ScaleJob): void {
    scaleRows(j.src, j.dst, j.base, j.sa, j.nC, 0, j.nT, j.ft, j.fs);
  }

  setCancel(): void {}

  dispose(): void {}
}

/** One instance serves every problem: it holds no state. */
export const inProcessBackend: ComputeBackend = new InProcessBackend();
