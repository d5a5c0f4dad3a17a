// The paper's balancing schedules, for study and comparison with the fast solvers: each step
// balances units with the closed-form (or 1-D convex) local optimum.
import type { Problem } from './compile';
import { maxOf, relativeDeficits, varStats } from './evaluate';
import { LocalBalancer } from './localBalance';
import { rng } from './random';
import { DEFAULT_TOLERANCE, type SolveOptions, type SolveResult } from './solverTypes';

export type ScheduleName = 'stochastic' | 'cyclic' | 'layers' | 'odd-even' | 'tied-layers';

export const SCHEDULES: readonly ScheduleName[] = ['stochastic', 'cyclic', 'layers', 'odd-even', 'tied-layers'];

/** Groups that own variables, in network order. */
function layersWithVars(problem: Problem): number[][] {
  return problem.groupVars.filter((v) => v.length > 0).map((v) => Array.from(v));
}

/** Max relative deficit of each layer's totals (what tied balancing drives to zero). */
export function layerDeficit(lb: LocalBalancer, layers: number[][]): number {
  let m = 0;
  for (const vars of layers) {
    const prof = lb.profile(vars);
    const a = prof.inSum;
    const b = prof.degree * prof.outSum;
    if (a + b > 0) m = Math.max(m, Math.abs(a - b) / (a + b));
  }
  return m;
}

/**
 * Runs a schedule until the max relative deficit (per unit; per layer for tied-layers) is at
 * most the tolerance. One iteration is one step: one unit (stochastic, cyclic), one layer
 * (layers, tied-layers) or one colour of layers (odd-even). Convergence is checked once per
 * epoch: after as many steps as it takes to visit every unit (or layer) once on average.
 */
export function runSchedule(problem: Problem, x0: Float64Array, schedule: ScheduleName, opts: SolveOptions = {}): SolveResult {
  const tol = opts.tolerance ?? DEFAULT_TOLERANCE;
  const maxIt = opts.maxIterations ?? 1_000_000;
  const rand = rng(opts.seed ?? 1);
  const x = Float64Array.from(x0);
  const lb = new LocalBalancer(problem, x);
  const layers = layersWithVars(problem);
  const tied = schedule === 'tied-layers';
  let passes = 0;
  const measure = (): { R: number; m: number } => {
    const st = varStats(problem, x);
    passes++;
    return { R: st.R, m: tied ? layerDeficit(lb, layers) : maxOf(relativeDeficits(problem, st)) };
  };
  const first = measure();
  let cur = first;
  let iterations = 0;
  let converged = cur.m <= tol;
  let cancelled = false;
  const order = Array.from({ length: problem.nVars }, (_, i) => i);
  const epoch =
    schedule === 'stochastic' || schedule === 'cyclic' ? problem.nVars : schedule === 'odd-even' ? 2 : layers.length;
  let cursor = 0;
  while (!converged && iterations < maxIt && problem.nVars > 0) {
    for (let k = 0; k < epoch && iterations < maxIt; k++, iterations++) {
      switch (schedule) {
        case 'stochastic':
          lb.balance([Math.floor(rand() * problem.nVars)]);
          break;
        case 'cyclic':
          lb.balance([order[cursor]]);
          cursor = (cursor + 1) % order.length;
          break;
        case 'layers':
          for (const v of layers[Math.floor(rand() * layers.length)]) lb.balance([v]);
          break;
        case 'odd-even':
          for (let l = cursor; l < layers.length; l += 2) for (const v of layers[l]) lb.balance([v]);
          cursor = 1 - cursor;
          break;
        case 'tied-layers':
          lb.balance(layers[cursor]);
          cursor = (cursor + 1) % layers.length;
          break;
      }
    }
    // An epoch reads each weight about twice (as an incoming and as an outgoing edge).
    passes += 2;
    cur = measure();
    converged = cur.m <= tol;
    if (opts.onProgress?.({ iteration: iterations, maxRelativeDeficit: cur.m, R: cur.R }) === false) {
      cancelled = true;
      break;
    }
  }
  return {
    x,
    method: schedule,
    iterations,
    converged,
    cancelled: cancelled || undefined,
    RBefore: first.R,
    RAfter: cur.R,
    maxRelativeDeficitBefore: first.m,
    maxRelativeDeficitAfter: cur.m,
    passes,
  };
}
