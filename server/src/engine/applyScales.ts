// Writes a scaling into the weights: w_ab → w_ab·Λ_t(a)·Λ_s(b)^(−c). Pure: returns new tensors
// for the ones that change, in their own dtype; the inputs are not touched. Float row-major
// blocks are scaled by the problem's compute backend.
import { allocate, elementReader, numberToBfloat16, numberToFloat16 } from '../tensor/dtype';
import type { Tensor } from '../tensor/tensor';
import type { Problem } from './compile';
import { computeOf } from './evaluate';
import type { Network } from './network';

/** Λ per unit from log-scales per variable (1 for units that are not variables). */
export function unitScales(problem: Problem, x: Float64Array): Float64Array {
  return Float64Array.from(problem.unitVar, (v) => (v >= 0 ? Math.exp(x[v]) : 1));
}

export interface ScaleOptions {
  /**
   * Scale the network's own tensors instead of copies: for a caller that no longer needs the
   * original values (no allocation, no page faults, half the memory traffic).
   */
  inPlace?: boolean;
}

export function scaledTensors(problem: Problem, x: Float64Array, opts: ScaleOptions = {}): Map<string, Tensor> {
  const lambda = unitScales(problem, x);
  const out = new Map<string, Tensor>();
  for (const blk of problem.scaled) {
    const { tensor, base, nT, nS, sa, sb, taps } = blk.layout;
    const ft = Float64Array.from(blk.tUnit, (u) => (u >= 0 ? lambda[u] : 1));
    const fs = Float64Array.from(blk.sUnit, (u, b) => (u >= 0 ? Math.pow(lambda[u], -blk.sDeg[b]) : 1));
    if (ft.every((v) => v === 1) && fs.every((v) => v === 1)) continue;
    const src = tensor.data;
    const fast = (src instanceof Float32Array || src instanceof Float64Array) && taps.length === 1 && taps[0] === 0;
    let copy = out.get(tensor.name);
    if (!copy) {
      // A block that rewrites every element needs no copy of the old values first.
      const whole = fast && nT * nS === src.length;
      const data = opts.inPlace ? src : whole ? allocate(tensor.dtype, src.length) : src.slice();
      copy = opts.inPlace ? tensor : { name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, data };
      out.set(tensor.name, copy);
    }
    const dst = copy.data;
    if (fast) {
      // Float weights, one element per (row, column): row by row on the problem's backend (over several threads when large on compute's CPU backend).
      const out = dst as Float32Array | Float64Array;
      if (sb === 1) {
        computeOf(problem).scale({ src, dst: out, base, sa, nT, nC: nS, ft, fs, cost: blk.cost });
        continue;
      }
      for (let a = 0; a < nT; a++) {
        const fa = ft[a];
        const off = base + a * sa;
        for (let b = 0; b < nS; b++) dst[off + b * sb] = src[off + b * sb] * fa * fs[b];
      }
      continue;
    }
    const read = elementReader(tensor.dtype, tensor.data);
    const encode =
      tensor.dtype === 'float16' ? numberToFloat16 : tensor.dtype === 'bfloat16' ? numberToBfloat16 : (v: number) => v;
    for (let a = 0; a < nT; a++) {
      for (let b = 0; b < nS; b++) {
        const f = ft[a] * fs[b];
        if (f === 1) continue;
        const off = base + a * sa + b * sb;
        for (let k = 0; k < taps.length; k++) dst[off + taps[k]] = encode(read(off + taps[k]) * f);
      }
    }
  }
  return out;
}

/** The network with its scaled tensors replaced (pass `changed` when already computed). */
export function applyScales(problem: Problem, x: Float64Array, changed = scaledTensors(problem, x)): Network {
  const net = problem.network;
  return { ...net, tensors: net.tensors.map((t) => changed.get(t.name) ?? t) };
}
