// Checking that two networks compute the same function: forward passes on seeded random inputs.
import { DTYPE_EPSILON } from '../tensor/dtype';
import type { Tensor } from '../tensor/tensor';
import { forward } from './forward';
import type { Network } from './network';
import { normal, rng } from './random';

export interface FunctionComparison {
  maxAbsolute: number;
  /** Largest |a − b| / max(|a|, |b|) over outputs not near zero (relative to the output scale). */
  maxRelative: number;
  samples: number;
  steps: number;
  /** The input groups' shapes fed ([units, ...spatial]). */
  inputs?: { name: string; shape: number[]; source: string }[];
  /** Why the check proves nothing (every output the same for all random inputs), when it does not. */
  inconclusive?: string;
}

export function compareFunctions(a: Network, b: Network, seed = 1, samples = 4): FunctionComparison {
  const steps = a.connections.some((c) => c.delay) ? 4 : 1;
  const draw = normal(rng(seed));
  let maxAbs = 0;
  let maxRel = 0;
  const firstRun = new Map<string, Float64Array[]>();
  const varies = new Set<string>();
  for (let k = 0; k < samples; k++) {
    const inputs = new Map<string, Float64Array[]>();
    for (const g of a.groups) {
      if (g.role !== 'input') continue;
      const S = (g.spatial ?? []).reduce((x, y) => x * y, 1);
      inputs.set(g.name, Array.from({ length: steps }, () => Float64Array.from({ length: g.size * S }, draw)));
    }
    const va = forward(a, inputs, steps);
    const vb = forward(b, inputs, steps);
    for (const g of a.groups) {
      if (g.role !== 'output') continue;
      const xa = va.get(g.name)!;
      const xb = vb.get(g.name)!;
      let scale = 0;
      for (const v of xa) for (const y of v) scale = Math.max(scale, Math.abs(y));
      const first = firstRun.get(g.name);
      if (!first) firstRun.set(g.name, xa);
      else if (xa.some((v, t) => v.some((y, i) => Math.abs(y - first[t][i]) > VERIFY_LIMIT * scale))) varies.add(g.name);
      for (let t = 0; t < steps; t++) {
        for (let i = 0; i < xa[t].length; i++) {
          const d = Math.abs(xa[t][i] - xb[t][i]);
          maxAbs = Math.max(maxAbs, d);
          const m = Math.max(Math.abs(xa[t][i]), Math.abs(xb[t][i]), 1e-6 * scale);
          if (m > 0) maxRel = Math.max(maxRel, d / m);
        }
      }
    }
  }
  const inputs = a.groups.filter((g) => g.role === 'input').map((g) => ({ name: g.name, shape: [g.size, ...(g.spatial ?? [])], source: 'model' }));
  const outputs = [...firstRun.keys()];
  const inconclusive =
    samples >= 2 && outputs.length > 0 && varies.size === 0
      ? `every output (${outputs.join(', ')}) is the same for all ${samples} random inputs: the check cannot tell a wrong balance from a right one`
      : undefined;
  return { maxAbsolute: maxAbs, maxRelative: maxRel, samples, steps, inputs, ...(inconclusive ? { inconclusive } : {}) };
}

/** Outputs that move by more than this (relative) mean something other than rounding went wrong. */
export const VERIFY_LIMIT = 1e-4;

/**
 * How far balanced outputs may stray. Scaled weights are rounded back to their dtype, so a
 * bfloat16 model moves by parts in a thousand though nothing is wrong; the check is there to
 * catch a scaling applied to the wrong axis, which moves outputs by their own size.
 */
export function verifyLimit(changed: Iterable<Tensor>): number {
  let eps = 0;
  for (const t of changed) eps = Math.max(eps, DTYPE_EPSILON[t.dtype]);
  return Math.max(VERIFY_LIMIT, 2 * eps);
}
