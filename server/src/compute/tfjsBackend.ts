// The TensorFlow.js backend: used only when @tensorflow/tfjs-node-gpu (CUDA) or
// @tensorflow/tfjs-node is installed beside the extension; never a dependency. tfjs has no
// float64 tensors, so matrices are float32 on the device and each product is reduced in
// chunks of CHUNK terms whose float32 partial sums are added in float64 here.
import type { CostStorage } from '../engine/costStorage';
import { BackendUnavailable, type ComputeBackend, type ProductJob, type ScaleJob } from './backend';
import { cpuBackend } from './cpuBackend';

/** The part of the tfjs API this backend calls. */
interface TfTensor {
  dataSync(): Float32Array;
  dispose(): void;
}
interface Tf {
  version_core?: string;
  tensor2d(values: Float32Array, shape: [number, number], dtype: 'float32'): TfTensor;
  matMul(a: TfTensor, b: TfTensor, transposeA?: boolean, transposeB?: boolean): TfTensor;
  slice(x: TfTensor, begin: number[], size: number[]): TfTensor;
  getBackend(): string;
}

export const TFJS_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/** The first tfjs binding that loads, or why none did. */
export function loadTfjs(require_: (id: string) => unknown = require): { tf: Tf; pkg: string } {
  const reasons: string[] = [];
  for (const pkg of TFJS_PACKAGES) {
    try {
      return { tf: require_(pkg) as Tf, pkg };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      reasons.push(err.code === 'MODULE_NOT_FOUND' ? `${pkg} not installed` : `${pkg}: ${err.message.split('\n')[0]}`);
    }
  }
  throw new BackendUnavailable('tfjs', reasons.join('; '));
}

const CHUNK = 1024;

interface Resident {
  /** The cost matrix as stored: [rows][cols]; C itself or, when transposed, Cᵀ. */
  m: TfTensor;
  transposed: boolean;
  rows: number;
  cols: number;
}

export class TfjsBackend implements ComputeBackend {
  readonly name = 'tfjs';
  readonly device: string;
  readonly description: string;
  private readonly resident = new Map<CostStorage, Resident>();

  constructor(
    private readonly tf: Tf,
    pkg: string,
  ) {
    this.device = pkg.endsWith('-gpu') ? 'cuda' : 'cpu';
    this.description = `${pkg} ${tf.version_core ?? ''} (${tf.getBackend()}; float32 with float64 sums of ${CHUNK}-term chunks)`;
  }

  load(costs: readonly CostStorage[]): void {
    const wanted = new Set(costs);
    for (const [c, r] of this.resident) {
      if (!wanted.has(c)) {
        r.m.dispose();
        this.resident.delete(c);
      }
    }
    for (const c of costs) this.residentOf(c);
  }

  private residentOf(c: CostStorage): Resident {
    let r = this.resident.get(c);
    if (r) return r;
    const transposed = c.kind === 'weights' && c.sb !== 1;
    const rows = transposed ? c.nS : c.nT;
    const cols = transposed ? c.nT : c.nS;
    const n = rows * cols;
    const values = new Float32Array(n);
    const base = c.kind === 'weights' ? c.base : 0;
    for (let i = 0; i < n; i++) {
      const w = c.data[base + i];
      values[i] = c.kind === 'matrix' ? w : c.p === 2 ? w * w : Math.abs(w);
    }
    r = { m: this.tf.tensor2d(values, [rows, cols], 'float32'), transposed, rows, cols };
    this.resident.set(c, r);
    return r;
  }

  /** out[i] = Σ_k M[i][k]·v[k] (or Σ_k M[k][i]·v[k] when `left`), chunked over k. */
  private matvec(r: Resident, v: Float64Array, left: boolean, out: Float64Array): void {
    const tf = this.tf;
    const inner = left ? r.rows : r.cols;
    const outer = left ? r.cols : r.rows;
    out.fill(0, 0, outer);
    for (let k = 0; k < inner; k += CHUNK) {
      const len = Math.min(CHUNK, inner - k);
      const part = left ? tf.slice(r.m, [k, 0], [len, r.cols]) : tf.slice(r.m, [0, k], [r.rows, len]);
      const vec = tf.tensor2d(Float32Array.from(v.subarray(k, k + len)), left ? [1, len] : [len, 1], 'float32');
      const prod = left ? tf.matMul(vec, part) : tf.matMul(part, vec);
      const sums = prod.dataSync();
      for (let i = 0; i < outer; i++) out[i] += sums[i];
      part.dispose();
      vec.dispose();
      prod.dispose();
    }
  }

  products(jobs: readonly ProductJob[]): void {
    for (const j of jobs) {
      const r = this.residentOf(j.cost);
      // row = C·x; col = Cᵀ·y; with M = Cᵀ stored, the roles of the two sides swap.
      if (j.x) this.matvec(r, j.x, r.transposed, j.row);
      if (j.y) this.matvec(r, j.y, !r.transposed, j.col);
    }
  }

  scale(job: ScaleJob): void {
    // Weights live in this process already: the CPU kernel writes them in one pass.
    cpuBackend.scale(job);
  }

  setCancel(): void {}

  dispose(): void {
    for (const r of this.resident.values()) r.m.dispose();
    this.resident.clear();
  }
}
