// Newton's method with conjugate gradients for any topology (skips, recurrent cycles, ties)
// and any regularizer: the Hessian of R in log-scales is a weighted graph Laplacian grounded
// at the visible units, so each CG step costs one fused pass over the cost blocks.
import type { Problem } from './compile';
import { applyCoarse, coarseSpace, solveCoarse } from './coarse';
import { gradient, hessian, maxOf, relativeDeficits, varStats, type Hessian } from './evaluate';
import { updateLayers } from './groupUpdate';
import { LocalBalancer } from './localBalance';
import { DEFAULT_TOLERANCE, type SolveOptions, type SolveResult } from './solverTypes';

export interface NewtonOptions extends SolveOptions {
  /** Sweeps before the first Newton step (default 3): cold Newton can stall far from the optimum. */
  warmSweeps?: number;
}

/** Preconditioned CG for H·d = b; returns d and the number of products used. */
function pcg(H: Hessian, b: Float64Array, relTol: number, maxIt: number): { d: Float64Array; products: number } {
  const n = b.length;
  const d = new Float64Array(n);
  const r = Float64Array.from(b);
  const inv = H.diag.map((v) => (v > 0 ? 1 / v : 0));
  const z = r.map((v, i) => v * inv[i]);
  const q = Float64Array.from(z);
  const Hq = new Float64Array(n);
  let rz = dot(r, z);
  const bnorm = Math.sqrt(dot(b, b));
  let products = 0;
  for (let it = 0; it < maxIt; it++) {
    if (Math.sqrt(dot(r, r)) <= relTol * bnorm) break;
    H.apply(q, Hq);
    products++;
    const qHq = dot(q, Hq);
    if (!(qHq > 0)) break;
    const a = rz / qHq;
    for (let i = 0; i < n; i++) {
      d[i] += a * q[i];
      r[i] -= a * Hq[i];
    }
    for (let i = 0; i < n; i++) z[i] = r[i] * inv[i];
    const rzNew = dot(r, z);
    const beta = rzNew / rz;
    rz = rzNew;
    for (let i = 0; i < n; i++) q[i] = z[i] + beta * q[i];
  }
  return { d, products };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** One warm-start sweep: a coarse step and layer-by-layer updates (Lp), or unit-by-unit balancing. */
function warmSweep(problem: Problem, x: Float64Array): number {
  const p = problem.regularizer.power;
  const space = coarseSpace(problem);
  if (p !== undefined && space) {
    const st = varStats(problem, x, { keep: true });
    applyCoarse(space, x, solveCoarse(space, st.blocks!, p));
    const phase = new Uint8Array(space.size);
    for (let k = 0; k < space.size; k++) {
      phase.fill(0);
      phase[k] = 1;
      updateLayers(problem, space, x, phase);
    }
    return 1 + space.size;
  }
  const lb = new LocalBalancer(problem, x);
  for (let v = 0; v < problem.nVars; v++) lb.balance([v]);
  return 2;
}

export function solveNewton(problem: Problem, x0: Float64Array, opts: NewtonOptions = {}): SolveResult {
  const tol = opts.tolerance ?? DEFAULT_TOLERANCE;
  const maxIt = opts.maxIterations ?? 200;
  let x = Float64Array.from(x0);
  let passes = 0;
  let st = varStats(problem, x, { keep: true });
  passes++;
  let m = maxOf(relativeDeficits(problem, st));
  const first = { R: st.R, m };
  // Warm start; a sweep that raises R (possible where a layer's units are joined among
  // themselves) is undone.
  for (let k = 0; k < (opts.warmSweeps ?? 3) && m > tol; k++) {
    const trial = Float64Array.from(x);
    passes += warmSweep(problem, trial);
    const next = varStats(problem, trial, { keep: true });
    passes++;
    if (!(next.R <= st.R)) break;
    x = trial;
    st = next;
    m = maxOf(relativeDeficits(problem, st));
  }
  let iterations = 0;
  let converged = false;
  let cancelled = false;
  for (;;) {
    if (opts.onProgress?.({ iteration: iterations, maxRelativeDeficit: m, R: st.R }) === false) {
      cancelled = true;
      break;
    }
    if (m <= tol) {
      converged = true;
      break;
    }
    if (iterations >= maxIt) break;
    iterations++;
    const g = gradient(problem, st);
    const H = hessian(problem, x, st.blocks);
    if (problem.regularizer.power === undefined) passes++;
    const { d, products } = pcg(H, g.map((v) => -v), Math.min(0.1, Math.sqrt(m)), 500);
    passes += products;
    // Near the optimum R stops resolving differences: accept a step when R or the worst deficit falls.
    let step = 1;
    let accepted = false;
    for (let ls = 0; ls < 40; ls++) {
      const trial = x.map((v, i) => v + step * d[i]);
      const next = varStats(problem, trial, { keep: true });
      passes++;
      const mNext = maxOf(relativeDeficits(problem, next));
      if (next.R < st.R || mNext < m) {
        x = trial;
        st = next;
        m = mNext;
        accepted = true;
        break;
      }
      step /= 2;
    }
    if (!accepted) break;
  }
  return {
    x,
    method: 'newton-cg',
    iterations,
    converged,
    cancelled: cancelled || undefined,
    RBefore: first.R,
    RAfter: st.R,
    maxRelativeDeficitBefore: first.m,
    maxRelativeDeficitAfter: m,
    passes,
  };
}
