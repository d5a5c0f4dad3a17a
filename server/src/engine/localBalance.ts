// Balancing one unit, or one set of units sharing a factor (a tied layer): the 1-D convex
// problem in t = log λ, solved in closed form for Lp and by safeguarded Newton otherwise.
import type { Problem } from './compile';
import { costAt } from './evaluate';
import { cost as gCost, curvature, flux, gradientScale } from './regularizer';

/** Where each variable appears: (block, row) pairs as a target and (block, column) pairs as a source. */
interface Incidence {
  rowStart: Int32Array;
  rows: Int32Array;
  colStart: Int32Array;
  cols: Int32Array;
}

const incidences = new WeakMap<Problem, Incidence>();

function csr(n: number, entries: number[]): { start: Int32Array; data: Int32Array } {
  const start = new Int32Array(n + 1);
  for (let i = 0; i < entries.length; i += 3) start[entries[i] + 1] += 1;
  for (let v = 0; v < n; v++) start[v + 1] += start[v];
  const fill = start.slice(0, n);
  const data = new Int32Array((entries.length / 3) * 2);
  for (let i = 0; i < entries.length; i += 3) {
    const k = fill[entries[i]]++;
    data[2 * k] = entries[i + 1];
    data[2 * k + 1] = entries[i + 2];
  }
  return { start, data };
}

function incidence(problem: Problem): Incidence {
  let inc = incidences.get(problem);
  if (!inc) {
    const r: number[] = [];
    const c: number[] = [];
    problem.blocks.forEach((blk, bi) => {
      blk.tVar.forEach((v, a) => v >= 0 && r.push(v, bi, a));
      blk.sVar.forEach((v, b) => v >= 0 && c.push(v, bi, b));
    });
    const rr = csr(problem.nVars, r);
    const cc = csr(problem.nVars, c);
    inc = { rowStart: rr.start, rows: rr.data, colStart: cc.start, cols: cc.data };
    incidences.set(problem, inc);
  }
  return inc;
}

/**
 * The cost of the edges touching a set S of variables at x, by how a common factor λ = e^t on S
 * moves them: incoming edges scale by λ, outgoing by λ^-c, edges inside S by λ^(1-c).
 * For Lp these are sums of |w|^p; otherwise the scaled |w| values themselves.
 */
export interface SetProfile {
  degree: number;
  inSum: number;
  outSum: number;
  selfSum: number;
  inValues?: number[];
  outValues?: number[];
  selfValues?: number[];
}

/**
 * Balances units one set at a time against a shared x, keeping the per-variable factors
 * e^{p·x} and e^{-p·c·x} in step with x so that a profile costs one read per edge.
 */
export class LocalBalancer {
  private readonly alpha: Float64Array;
  private readonly beta: Float64Array;
  private readonly mark: Int32Array;
  private stamp = 0;
  private readonly p: number;

  constructor(
    private readonly problem: Problem,
    readonly x: Float64Array,
  ) {
    this.p = problem.regularizer.power ?? 1;
    this.alpha = new Float64Array(problem.nVars);
    this.beta = new Float64Array(problem.nVars);
    this.mark = new Int32Array(problem.nVars);
    for (let v = 0; v < problem.nVars; v++) this.refresh(v);
  }

  private refresh(v: number): void {
    this.alpha[v] = Math.exp(this.p * this.x[v]);
    this.beta[v] = Math.exp(-this.p * this.problem.degree[v] * this.x[v]);
  }

  profile(vars: readonly number[]): SetProfile {
    const problem = this.problem;
    const inc = incidence(problem);
    const stamp = ++this.stamp;
    const mark = this.mark;
    for (const v of vars) mark[v] = stamp;
    const degree = problem.degree[vars[0]];
    for (const v of vars) {
      if (problem.degree[v] !== degree) throw new Error('units balanced together must share one homogeneity degree');
    }
    const power = problem.regularizer.power !== undefined;
    const prof: SetProfile = { degree, inSum: 0, outSum: 0, selfSum: 0 };
    if (!power) {
      prof.inValues = [];
      prof.outValues = [];
      prof.selfValues = [];
    }
    // For a sum of powers the scaled |w| is needed: factors e^{x} and e^{-c·x} (p = 1 here).
    const { alpha, beta } = this;
    for (const v of vars) {
      for (let k = inc.rowStart[v]; k < inc.rowStart[v + 1]; k++) {
        const blk = problem.blocks[inc.rows[2 * k]];
        const a = inc.rows[2 * k + 1];
        const fa = alpha[v];
        const { sVar } = blk;
        for (let b = 0; b < blk.layout.nS; b++) {
          const s = sVar[b];
          const isSelf = s >= 0 && mark[s] === stamp;
          const f = s >= 0 ? fa * beta[s] : fa;
          if (power) {
            const val = costAt(blk.cost!, a, b) * f;
            if (isSelf) prof.selfSum += val;
            else prof.inSum += val;
          } else {
            const K = blk.layout.taps.length;
            const off = (a * blk.layout.nS + b) * K;
            const into = isSelf ? prof.selfValues! : prof.inValues!;
            for (let t = 0; t < K; t++) into.push(blk.absw![off + t] * f);
          }
        }
      }
      for (let k = inc.colStart[v]; k < inc.colStart[v + 1]; k++) {
        const blk = problem.blocks[inc.cols[2 * k]];
        const b = inc.cols[2 * k + 1];
        const fb = beta[v];
        const { tVar } = blk;
        for (let a = 0; a < blk.layout.nT; a++) {
          const t = tVar[a];
          if (t >= 0 && mark[t] === stamp) continue; // counted once, on the row side
          const f = t >= 0 ? fb * alpha[t] : fb;
          if (power) prof.outSum += costAt(blk.cost!, a, b) * f;
          else {
            const K = blk.layout.taps.length;
            const off = (a * blk.layout.nS + b) * K;
            for (let q = 0; q < K; q++) prof.outValues!.push(blk.absw![off + q] * f);
          }
        }
      }
    }
    if (!power) {
      const reg = problem.regularizer;
      prof.inSum = prof.inValues!.reduce((s, w) => s + flux(reg, w), 0);
      prof.outSum = prof.outValues!.reduce((s, w) => s + flux(reg, w), 0);
      prof.selfSum = prof.selfValues!.reduce((s, w) => s + flux(reg, w), 0);
    }
    return prof;
  }

  /** Balances a set of variables with one common factor, updating x in place. */
  balance(vars: readonly number[]): LocalBalance | undefined {
    const prediction = this.predict(vars);
    if (prediction) {
      for (const v of vars) {
        this.x[v] += prediction.logFactor;
        this.refresh(v);
      }
    }
    return prediction;
  }

  /** λ* (as log λ) and the predicted ΔR for a set, without applying it. */
  predict(vars: readonly number[]): LocalBalance | undefined {
    const prof = this.profile(vars);
    const t = optimalLogFactor(this.problem, prof);
    if (t === undefined) return undefined;
    return { logFactor: t, deltaR: profileCost(this.problem, prof, 0) - profileCost(this.problem, prof, t) };
  }
}

/** φ(t): the regularizer cost of the profile's edges after scaling the set by e^t. */
export function profileCost(problem: Problem, prof: SetProfile, t: number): number {
  const p = problem.regularizer.power;
  const c = prof.degree;
  if (p !== undefined) {
    return prof.inSum * Math.exp(p * t) + prof.outSum * Math.exp(-p * c * t) + prof.selfSum * Math.exp(p * (1 - c) * t);
  }
  const reg = problem.regularizer;
  let s = 0;
  for (const w of prof.inValues!) s += gCost(reg, w * Math.exp(t));
  for (const w of prof.outValues!) s += gCost(reg, w * Math.exp(-c * t));
  for (const w of prof.selfValues!) s += gCost(reg, w * Math.exp((1 - c) * t));
  return s;
}

function derivatives(problem: Problem, prof: SetProfile, t: number): [number, number] {
  const p = problem.regularizer.power;
  const c = prof.degree;
  const e = 1 - c;
  if (p !== undefined) {
    const i = prof.inSum * Math.exp(p * t);
    const o = prof.outSum * Math.exp(-p * c * t);
    const s = prof.selfSum * Math.exp(p * e * t);
    return [p * (i - c * o + e * s), p * p * (i + c * c * o + e * e * s)];
  }
  const reg = problem.regularizer;
  const gs = gradientScale(reg);
  let d1 = 0;
  let d2 = 0;
  for (const w of prof.inValues!) {
    const s = w * Math.exp(t);
    d1 += gs * flux(reg, s);
    d2 += gs * curvature(reg, s);
  }
  for (const w of prof.outValues!) {
    const s = w * Math.exp(-c * t);
    d1 -= gs * c * flux(reg, s);
    d2 += gs * c * c * curvature(reg, s);
  }
  for (const w of prof.selfValues!) {
    const s = w * Math.exp(e * t);
    d1 += gs * e * flux(reg, s);
    d2 += gs * e * e * curvature(reg, s);
  }
  return [d1, d2];
}

/** The optimal log-factor t* for the set, or undefined when it has no optimum (dead). */
export function optimalLogFactor(problem: Problem, prof: SetProfile): number | undefined {
  const p = problem.regularizer.power;
  const c = prof.degree;
  if (!(prof.inSum > 0) || !(prof.outSum > 0)) return undefined;
  // Lp: λ* = (c·OUT/IN)^(1/(p(1+c))), exact unless edges inside the set change too.
  if (p !== undefined && (prof.selfSum === 0 || c === 1)) return Math.log((c * prof.outSum) / prof.inSum) / (p * (1 + c));
  // Safeguarded Newton on the convex φ: keep a bracket [lo, hi] with φ'(lo) < 0 < φ'(hi).
  let lo = -1;
  let hi = 1;
  while (derivatives(problem, prof, lo)[0] > 0) lo *= 2;
  while (derivatives(problem, prof, hi)[0] < 0) hi *= 2;
  let t = 0;
  for (let it = 0; it < 200; it++) {
    const [d1, d2] = derivatives(problem, prof, t);
    if (d1 > 0) hi = t;
    else lo = t;
    let next = t - d1 / d2;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (Math.abs(next - t) <= 1e-15 * Math.max(1, Math.abs(t))) return next;
    t = next;
  }
  return t;
}

export interface LocalBalance {
  /** log λ applied to every variable of the set. */
  logFactor: number;
  /** R before minus R after: the predicted (and realised) decrease. */
  deltaR: number;
}
