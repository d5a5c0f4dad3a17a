// The fast exact solver for layer chains (and any network whose layers two-colour): sweep
// odd layers, then even layers, each exactly balanced given its neighbours, after a coarse
// correction that balances the layer totals. Typically 3–6 iterations at any depth.
import type { Problem } from './compile';
import { applyCoarse, coarseSpace, solveCoarse } from './coarse';
import { maxOf, relativeDeficits, varStats } from './evaluate';
import { twoColouring, updateLayers, updateLayersFromPass } from './groupUpdate';
import { DEFAULT_TOLERANCE, type SolveOptions, type SolveResult } from './solverTypes';

/** Whether the red-black solver applies: a single power, one layer per block side, two colours. */
export function redBlackApplies(problem: Problem): boolean {
  if (problem.regularizer.power === undefined) return false;
  const space = coarseSpace(problem);
  return space !== undefined && twoColouring(problem, space) !== undefined;
}

export interface RedBlackOptions extends SolveOptions {
  /** The per-layer coarse correction (default on); off gives the plain red-black schedule. */
  coarse?: boolean;
}

export function solveRedBlack(problem: Problem, x0: Float64Array, opts: RedBlackOptions = {}): SolveResult {
  const p = problem.regularizer.power;
  const space = coarseSpace(problem);
  const colours = space && twoColouring(problem, space);
  if (p === undefined || !space || !colours) throw new Error('the red-black solver needs a single-power regularizer and two-colourable layers');
  const tol = opts.tolerance ?? DEFAULT_TOLERANCE;
  const maxIt = opts.maxIterations ?? 1000;
  const useCoarse = opts.coarse ?? true;
  const red = colours.map((c) => (c === 0 ? 1 : 0));
  const black = colours.map((c) => (c === 1 ? 1 : 0));
  const x = Float64Array.from(x0);
  let passes = 0;
  let first: { R: number; m: number } | undefined;
  let iterations = 0;
  let converged = false;
  let cancelled = false;
  let R = 0;
  let m = 0;
  for (;;) {
    const st = varStats(problem, x, { keep: useCoarse });
    passes++;
    R = st.R;
    m = maxOf(relativeDeficits(problem, st));
    first ??= { R, m };
    if (opts.onProgress?.({ iteration: iterations, maxRelativeDeficit: m, R }) === false) {
      cancelled = true;
      break;
    }
    if (m <= tol) {
      converged = true;
      break;
    }
    if (iterations >= maxIt) break;
    iterations++;
    if (useCoarse) {
      // The red update reuses the stats pass's products: one pass per iteration saved.
      const y = solveCoarse(space, st.blocks!, p);
      applyCoarse(space, x, y);
      updateLayersFromPass(problem, space, x, red, st.blocks!, y);
    } else {
      updateLayers(problem, space, x, red);
      passes += 1;
    }
    updateLayers(problem, space, x, black);
    passes += 1;
  }
  return {
    x,
    method: useCoarse ? 'red-black+coarse' : 'red-black',
    iterations,
    converged,
    cancelled: cancelled || undefined,
    RBefore: first!.R,
    RAfter: R,
    maxRelativeDeficitBefore: first!.m,
    maxRelativeDeficitAfter: m,
    passes,
  };
}
