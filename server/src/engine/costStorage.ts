// Cost matrices C[a][b] = Σ_taps |w|^p and the one kernel every solver needs: a fused pass
// that multiplies C by a vector from the right and another from the left.
import { backingBuffer, bfloat16ToNumber, float16Table } from '../tensor/dtype';
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
  const out = n >= FLOAT32_COST_ELEMENTS ? new Float32Array(backingBuffer(n * 4)) : new Float64Array(backingBuffer(n * 8));
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

/** The fused pass over rows [0, nR) of a row-major matrix (see fused below for the contract). */
export type FusedKernel = (data: Float64Array | Float32Array, base: number, nR: number, nC: number, kind: 0 | 1 | 2, x: Float64Array, y: Float64Array, row: Float64Array, col: Float64Array) => void;

/**
 * row[a] = Σ_b C[a][b]·x[b] (when x is given) and col[b] = Σ_a C[a][b]·y[a] (when y is given),
 * in one pass over C. Both outputs are overwritten. `kernel` runs the pass: this thread's
 * fused() unless a caller spreads it (threads/parallel.ts, for compute's CPU backend).
 */
export function costProducts(
  c: CostStorage,
  x: Float64Array | null,
  y: Float64Array | null,
  row: Float64Array,
  col: Float64Array,
  kernel: FusedKernel = fused,
): void {
  const { nT, nS } = c;
  // One fused kernel serves every case: a missing side multiplies zeros (its output is
  // discarded), which costs little next to reading C.
  const xs = x ?? zeros(nS);
  const ys = y ?? zeros(nT);
  const rowOut = x ? row : scratch(nT, 0);
  const colOut = y ? col : scratch(nS, 1);
  const kind = c.kind === 'matrix' ? 0 : c.p === 2 ? 2 : 1;
  const data = c.data;
  const base = c.kind === 'matrix' ? 0 : c.base;
  // Storage [source][target] (Keras, ONNX MatMul) is the transpose: swap the roles.
  if (c.kind === 'weights' && c.sb !== 1) kernel(data, base, nS, nT, kind, ys, xs, colOut, rowOut);
  else kernel(data, base, nT, nS, kind, xs, ys, rowOut, colOut);
}

const zeroCache: Float64Array[] = [];
const scratchCache: Float64Array[][] = [[], []];
function zeros(n: number): Float64Array {
  let z = zeroCache[0];
  if (!z || z.length < n) zeroCache[0] = z = new Float64Array(n);
  return z.length === n ? z : z.subarray(0, n);
}
function scratch(n: number, k: 0 | 1): Float64Array {
  let z = scratchCache[k][0];
  if (!z || z.length < n) scratchCache[k][0] = z = new Float64Array(n);
  return z.length === n ? z : z.subarray(0, n);
}

/**
 * Row-major M (nR × nC) at data[base…], element cost by kind (0: stored cost, 1: |w|, 2: w²):
 * row[r] = Σ_c M·x[c], col[c] = Σ_r M·y[r]. Four rows at a time: col is read and written once
 * per four rows, which halves the time of the plain loop in V8.
 */
export function fused(data: Float64Array | Float32Array, base: number, nR: number, nC: number, kind: 0 | 1 | 2, x: Float64Array, y: Float64Array, row: Float64Array, col: Float64Array): void {
  col.fill(0, 0, nC);
  let r = 0;
  for (; r + 3 < nR; r += 4) {
    const o0 = base + r * nC;
    const o1 = o0 + nC;
    const o2 = o1 + nC;
    const o3 = o2 + nC;
    const y0 = y[r];
    const y1 = y[r + 1];
    const y2 = y[r + 2];
    const y3 = y[r + 3];
    let r0 = 0;
    let r1 = 0;
    let r2 = 0;
    let r3 = 0;
    if (kind === 2) {
      for (let c = 0; c < nC; c++) {
        const w0 = data[o0 + c];
        const w1 = data[o1 + c];
        const w2 = data[o2 + c];
        const w3 = data[o3 + c];
        const v0 = w0 * w0;
        const v1 = w1 * w1;
        const v2 = w2 * w2;
        const v3 = w3 * w3;
        const xc = x[c];
        r0 += v0 * xc;
        r1 += v1 * xc;
        r2 += v2 * xc;
        r3 += v3 * xc;
        col[c] += v0 * y0 + v1 * y1 + v2 * y2 + v3 * y3;
      }
    } else if (kind === 1) {
      for (let c = 0; c < nC; c++) {
        const v0 = Math.abs(data[o0 + c]);
        const v1 = Math.abs(data[o1 + c]);
        const v2 = Math.abs(data[o2 + c]);
        const v3 = Math.abs(data[o3 + c]);
        const xc = x[c];
        r0 += v0 * xc;
        r1 += v1 * xc;
        r2 += v2 * xc;
        r3 += v3 * xc;
        col[c] += v0 * y0 + v1 * y1 + v2 * y2 + v3 * y3;
      }
    } else {
      for (let c = 0; c < nC; c++) {
        const v0 = data[o0 + c];
        const v1 = data[o1 + c];
        const v2 = data[o2 + c];
        const v3 = data[o3 + c];
        const xc = x[c];
        r0 += v0 * xc;
        r1 += v1 * xc;
        r2 += v2 * xc;
        r3 += v3 * xc;
        col[c] += v0 * y0 + v1 * y1 + v2 * y2 + v3 * y3;
      }
    }
    row[r] = r0;
    row[r + 1] = r1;
    row[r + 2] = r2;
    row[r + 3] = r3;
  }
  for (; r < nR; r++) {
    const o = base + r * nC;
    const yr = y[r];
    let acc = 0;
    for (let c = 0; c < nC; c++) {
      const w = data[o + c];
      const v = kind === 2 ? w * w : kind === 1 ? Math.abs(w) : w;
      acc += v * x[c];
      col[c] += v * yr;
    }
    row[r] = acc;
  }
}
