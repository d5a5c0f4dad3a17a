// Cost matrices C[a][b] = Σ_taps |w|^p and the one kernel every solver needs: a fused pass
// that multiplies C by a vector from the right and another from the left.
import { float16Table, bfloat16ToNumber } from '../tensor/dtype';
import type { BlockLayout } from './compile';

/**
 * Either a dense row-major matrix (taps summed, any p, decoded from any dtype), or, for large
 * 2-D float layers with p = 1 or 2, a view of the weights themselves: costs are recomputed in
 * each pass instead of doubling the memory a large model needs.
 */
export type CostStorage =
  | { kind: 'matrix'; nT: number; nS: number; data: Float64Array | Float32Array }
  | { kind: 'weights'; nT: number; nS: number; p: 1 | 2; data: Float32Array | Float64Array; base: number; sa: number; sb: number };

/** Blocks at least this large keep costs implicit when they can (p = 1 or 2, float weights). */
export const IMPLICIT_COST_ELEMENTS = 1 << 20;
/** Materialised cost matrices at least this large are stored in float32. */
const FLOAT32_COST_ELEMENTS = 1 << 22;

export function buildCostStorage(layout: BlockLayout, p: number): CostStorage {
  const { tensor, base, nT, nS, sa, sb, taps } = layout;
  const n = nT * nS;
  const data = tensor.data;
  const contiguous = (sb === 1 && sa === nS) || (sa === 1 && sb === nT);
  if (
    n >= IMPLICIT_COST_ELEMENTS && taps.length === 1 && (p === 1 || p === 2) && contiguous &&
    (data instanceof Float32Array || data instanceof Float64Array)
  ) {
    return { kind: 'weights', nT, nS, p, data, base, sa, sb };
  }
  const out = n >= FLOAT32_COST_ELEMENTS ? new Float32Array(n) : new Float64Array(n);
  const dtype = tensor.dtype;
  const table = dtype === 'float16' ? float16Table() : undefined;
  const read = (i: number): number =>
    table ? table[data[i]] : dtype === 'bfloat16' ? bfloat16ToNumber(data[i]) : data[i];
  const pow = p === 2 ? (x: number) => x * x : p === 1 ? Math.abs : (x: number) => Math.pow(Math.abs(x), p);
  for (let a = 0; a < nT; a++) {
    for (let b = 0; b < nS; b++) {
      const off = base + a * sa + b * sb;
      let s = 0;
      for (let k = 0; k < taps.length; k++) s += pow(read(off + taps[k]));
      out[a * nS + b] = s;
    }
  }
  return { kind: 'matrix', nT, nS, data: out };
}

/**
 * row[a] = Σ_b C[a][b]·x[b] (when x is given) and col[b] = Σ_a C[a][b]·y[a] (when y is given),
 * in one pass over C. Both outputs are overwritten.
 */
export function costProducts(
  c: CostStorage,
  x: Float64Array | null,
  y: Float64Array | null,
  row: Float64Array,
  col: Float64Array,
): void {
  const { nT, nS } = c;
  if (y) col.fill(0, 0, nS);
  if (c.kind === 'matrix') {
    matrixProducts(c.data, nT, nS, x, y, row, col);
    return;
  }
  if (c.sb === 1) weightsRowMajor(c.data, c.base, nT, nS, c.p, x, y, row, col);
  else weightsColMajor(c.data, c.base, nT, nS, c.p, x, y, row, col);
}

function matrixProducts(C: Float64Array | Float32Array, nT: number, nS: number, x: Float64Array | null, y: Float64Array | null, row: Float64Array, col: Float64Array): void {
  for (let a = 0; a < nT; a++) {
    const off = a * nS;
    if (x && y) {
      const ya = y[a];
      let r = 0;
      for (let b = 0; b < nS; b++) {
        const v = C[off + b];
        r += v * x[b];
        col[b] += v * ya;
      }
      row[a] = r;
    } else if (x) {
      let r = 0;
      for (let b = 0; b < nS; b++) r += C[off + b] * x[b];
      row[a] = r;
    } else if (y) {
      const ya = y[a];
      if (ya === 0) continue;
      for (let b = 0; b < nS; b++) col[b] += C[off + b] * ya;
    }
  }
}

// Weights stored [target][source] (PyTorch, ONNX Gemm with transB): rows are contiguous.
function weightsRowMajor(W: Float32Array | Float64Array, base: number, nT: number, nS: number, p: 1 | 2, x: Float64Array | null, y: Float64Array | null, row: Float64Array, col: Float64Array): void {
  for (let a = 0; a < nT; a++) {
    const off = base + a * nS;
    const ya = y ? y[a] : 0;
    let r = 0;
    if (p === 2) {
      if (x && y) {
        for (let b = 0; b < nS; b++) {
          const w = W[off + b];
          const v = w * w;
          r += v * x[b];
          col[b] += v * ya;
        }
      } else if (x) {
        for (let b = 0; b < nS; b++) {
          const w = W[off + b];
          r += w * w * x[b];
        }
      } else {
        for (let b = 0; b < nS; b++) {
          const w = W[off + b];
          col[b] += w * w * ya;
        }
      }
    } else {
      if (x && y) {
        for (let b = 0; b < nS; b++) {
          const v = Math.abs(W[off + b]);
          r += v * x[b];
          col[b] += v * ya;
        }
      } else if (x) {
        for (let b = 0; b < nS; b++) r += Math.abs(W[off + b]) * x[b];
      } else {
        for (let b = 0; b < nS; b++) col[b] += Math.abs(W[off + b]) * ya;
      }
    }
    if (x) row[a] = r;
  }
}

// Weights stored [source][target] (Keras, ONNX MatMul): columns of C are contiguous.
function weightsColMajor(W: Float32Array | Float64Array, base: number, nT: number, nS: number, p: 1 | 2, x: Float64Array | null, y: Float64Array | null, row: Float64Array, col: Float64Array): void {
  if (x) row.fill(0, 0, nT);
  for (let b = 0; b < nS; b++) {
    const off = base + b * nT;
    const xb = x ? x[b] : 0;
    let s = 0;
    if (p === 2) {
      for (let a = 0; a < nT; a++) {
        const w = W[off + a];
        const v = w * w;
        if (x) row[a] += v * xb;
        if (y) s += v * y[a];
      }
    } else {
      for (let a = 0; a < nT; a++) {
        const v = Math.abs(W[off + a]);
        if (x) row[a] += v * xb;
        if (y) s += v * y[a];
      }
    }
    if (y) col[b] = s;
  }
}
