// The coarse correction: one common log-factor per layer (group of variables), chosen to
// minimise R exactly given the block totals. It removes the slow, layer-wide error modes that
// unit-wise sweeps take depth² iterations to damp.
import type { Problem } from './compile';
import type { BlockPass } from './evaluate';

export interface CoarseSpace {
  /** Coarse index per variable. */
  of: Int32Array;
  size: number;
  degree: Float64Array;
  /** Coarse index of each block's rows and columns (-1 where that side has no variable). */
  blockTarget: Int32Array;
  blockSource: Int32Array;
}

const spaces = new WeakMap<Problem, CoarseSpace | null>();

/** One coarse variable per group; undefined when a block mixes groups on one side. */
export function coarseSpace(problem: Problem): CoarseSpace | undefined {
  if (spaces.has(problem)) return spaces.get(problem) ?? undefined;
  const index = new Map<number, number>();
  const of = new Int32Array(problem.nVars);
  const degree: number[] = [];
  for (let v = 0; v < problem.nVars; v++) {
    const g = problem.varGroup[v];
    if (!index.has(g)) {
      index.set(g, index.size);
      degree.push(problem.degree[v]);
    }
    of[v] = index.get(g)!;
  }
  const side = (vars: Int32Array): number | null => {
    let k = -1;
    for (const v of vars) {
      if (v < 0) continue;
      if (k === -1) k = of[v];
      else if (k !== of[v]) return null;
    }
    return k;
  };
  const bt = new Int32Array(problem.blocks.length);
  const bs = new Int32Array(problem.blocks.length);
  let ok = true;
  problem.blocks.forEach((blk, i) => {
    const t = side(blk.tVar);
    const s = side(blk.sVar);
    if (t === null || s === null) ok = false;
    bt[i] = t ?? -1;
    bs[i] = s ?? -1;
  });
  const sp = ok ? { of, size: index.size, degree: Float64Array.from(degree), blockTarget: bt, blockSource: bs } : null;
  spaces.set(problem, sp);
  return sp ?? undefined;
}

interface Term {
  T: number;
  /** Exponent p·(y[t] − c·y[s]) with t or s = -1 meaning absent. */
  t: number;
  s: number;
  c: number;
}

function coarseTerms(space: CoarseSpace, pass: BlockPass[]): Term[] {
  const terms: Term[] = [];
  pass.forEach((bp, i) => {
    const t = space.blockTarget[i];
    const s = space.blockSource[i];
    const c = s >= 0 ? space.degree[s] : 1;
    const [vv, vf, fv] = bp.totals;
    if (vv > 0) terms.push({ T: vv, t, s, c });
    if (vf > 0 && t >= 0) terms.push({ T: vf, t, s: -1, c });
    if (fv > 0 && s >= 0) terms.push({ T: fv, t: -1, s, c });
  });
  return terms;
}

function evalCoarse(terms: Term[], y: Float64Array, p: number, K: number, withDerivs: boolean): { F: number; g: Float64Array; H: Float64Array } {
  let F = 0;
  const g = new Float64Array(withDerivs ? K : 0);
  const H = new Float64Array(withDerivs ? K * K : 0);
  for (const term of terms) {
    const e = (term.t >= 0 ? y[term.t] : 0) - (term.s >= 0 ? term.c * y[term.s] : 0);
    const v = term.T * Math.exp(p * e);
    F += v;
    if (!withDerivs) continue;
    // ∂e/∂y: +1 on t, −c on s (summed when t = s).
    const idx: number[] = [];
    const coef: number[] = [];
    if (term.t >= 0) {
      idx.push(term.t);
      coef.push(1);
    }
    if (term.s >= 0) {
      const j = idx.indexOf(term.s);
      if (j >= 0) coef[j] -= term.c;
      else {
        idx.push(term.s);
        coef.push(-term.c);
      }
    }
    for (let i = 0; i < idx.length; i++) {
      g[idx[i]] += p * v * coef[i];
      for (let j = 0; j < idx.length; j++) H[idx[i] * K + idx[j]] += p * p * v * coef[i] * coef[j];
    }
  }
  return { F, g, H };
}

/** Solves H·d = −g for a symmetric positive (semi)definite H by Cholesky with a small ridge. */
function newtonDirection(H: Float64Array, g: Float64Array, K: number): Float64Array {
  let maxDiag = 0;
  for (let i = 0; i < K; i++) maxDiag = Math.max(maxDiag, H[i * K + i]);
  const L = Float64Array.from(H);
  const ridge = maxDiag * 1e-14 + 1e-300;
  for (let i = 0; i < K; i++) L[i * K + i] += ridge;
  for (let j = 0; j < K; j++) {
    let d = L[j * K + j];
    for (let k = 0; k < j; k++) d -= L[j * K + k] * L[j * K + k];
    d = Math.sqrt(Math.max(d, ridge));
    L[j * K + j] = d;
    for (let i = j + 1; i < K; i++) {
      let s = L[i * K + j];
      for (let k = 0; k < j; k++) s -= L[i * K + k] * L[j * K + k];
      L[i * K + j] = s / d;
    }
  }
  const z = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    let s = -g[i];
    for (let k = 0; k < i; k++) s -= L[i * K + k] * z[k];
    z[i] = s / L[i * K + i];
  }
  for (let i = K - 1; i >= 0; i--) {
    let s = z[i];
    for (let k = i + 1; k < K; k++) s -= L[k * K + i] * z[k];
    z[i] = s / L[i * K + i];
  }
  return z;
}

/**
 * The optimal common log-factor per coarse variable given the totals of a stats pass at x.
 * A coarse variable whose layer has no cost on one side stays at 0.
 */
export function solveCoarse(space: CoarseSpace, pass: BlockPass[], p: number): Float64Array {
  const K = space.size;
  const terms = coarseTerms(space, pass);
  let y = new Float64Array(K);
  let cur = evalCoarse(terms, y, p, K, true);
  for (let it = 0; it < 100; it++) {
    let gmax = 0;
    for (let i = 0; i < K; i++) gmax = Math.max(gmax, Math.abs(cur.g[i]));
    if (gmax <= 1e-14 * cur.F * p) break;
    const d = newtonDirection(cur.H, cur.g, K);
    let step = 1;
    let accepted = false;
    for (let ls = 0; ls < 40; ls++) {
      const yn = y.map((v, i) => v + step * d[i]);
      const next = evalCoarse(terms, yn, p, K, true);
      if (next.F < cur.F || (next.F === cur.F && step === 1)) {
        y = yn;
        cur = next;
        accepted = true;
        break;
      }
      step /= 2;
    }
    if (!accepted) break;
  }
  return y;
}

/** Adds the coarse correction to x (in place) and returns it. */
export function applyCoarse(space: CoarseSpace, x: Float64Array, y: Float64Array): void {
  for (let v = 0; v < x.length; v++) x[v] += y[space.of[v]];
}
