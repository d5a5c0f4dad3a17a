// The seam between the solvers and the work that touches every weight. The solvers (engine/)
// stay the same for every backend; a backend owns the cost matrices (resident on its device
// once loaded), the fused products C·x and Cᵀ·y that every iteration needs, and the final
// write of scaled weights.
import type { CostStorage } from '../engine/costStorage';

export type BackendName = 'cpu' | 'torch' | 'onnxruntime' | 'tfjs';
export const BACKEND_NAMES: readonly BackendName[] = ['cpu', 'torch', 'onnxruntime', 'tfjs'];

/** What the user asks for (contract/settings.ts): `auto` is the fastest GPU backend that starts, else the CPU. */
export { DEVICE_SETTINGS, type DeviceSetting } from '../contract/settings';

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
  readonly name: BackendName;
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

/** A backend that cannot run here (library not installed, no such device): the message says why. */
export class BackendUnavailable extends Error {
  constructor(readonly backend: BackendName, reason: string) {
    super(`${backend} backend: ${reason}`);
    this.name = 'BackendUnavailable';
  }
}
