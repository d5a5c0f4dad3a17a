// Regularizers R(W) = Σ g(|w|) with g increasing, g(0) = 0, and g(e^t·s) convex in t.
// A sum of powers Σ_k c_k |w|^{p_k} (c_k > 0, p_k > 0) covers Lp and mixtures like α·w² + β·|w|.

export interface PowerTerm {
  coef: number;
  p: number;
}

export interface Regularizer {
  readonly label: string;
  readonly terms: readonly PowerTerm[];
  /** The exponent when R is a single power (then costs scale multiplicatively: fast paths apply). */
  readonly power: number | undefined;
}

export function lp(p: number): Regularizer {
  if (!(p > 0) || !Number.isFinite(p)) throw new Error(`regularizer exponent p must be a positive number, got ${p}`);
  return { label: `L${p}`, terms: [{ coef: 1, p }], power: p };
}

export function powerSum(terms: readonly PowerTerm[]): Regularizer {
  if (terms.length === 0) throw new Error('a regularizer needs at least one term');
  for (const t of terms) {
    if (!(t.p > 0) || !(t.coef > 0) || !Number.isFinite(t.p) || !Number.isFinite(t.coef)) {
      throw new Error(`regularizer term ${t.coef}·|w|^${t.p}: coefficient and exponent must be positive`);
    }
  }
  if (terms.length === 1 && terms[0].coef === 1) return lp(terms[0].p);
  const label = terms.map((t) => `${t.coef}·|w|^${t.p}`).join(' + ');
  return { label, terms: [...terms], power: undefined };
}

/** Parses "2", "L1", "0.5", or "0.5*L2+0.1*L1" into a regularizer. */
export function parseRegularizer(text: string): Regularizer {
  const parts = text.replace(/\s+/g, '').split('+');
  const terms: PowerTerm[] = [];
  for (const part of parts) {
    const m = /^(?:([0-9.eE+-]+)\*)?L?([0-9.eE+-]+)$/.exec(part);
    if (!m) throw new Error(`cannot read regularizer "${text}": expected e.g. 2, L1, or 0.5*L2+0.1*L1`);
    terms.push({ coef: m[1] === undefined ? 1 : Number(m[1]), p: Number(m[2]) });
  }
  return powerSum(terms);
}

/** g(s) for s = |w| >= 0. */
export function cost(reg: Regularizer, s: number): number {
  let v = 0;
  for (const t of reg.terms) v += t.coef * Math.pow(s, t.p);
  return v;
}

/**
 * The balance quantity of one weight: s·g'(s), divided by p for a single power so that
 * for Lp it equals the cost |w|^p (balanced ⇔ Σ_in = Σ_out either way).
 */
export function flux(reg: Regularizer, s: number): number {
  if (reg.power !== undefined) return Math.pow(s, reg.power);
  let v = 0;
  for (const t of reg.terms) v += t.coef * t.p * Math.pow(s, t.p);
  return v;
}

/** d/dt of flux(e^t·s) at t = 0: the weight of this edge in the Hessian (same normalisation). */
export function curvature(reg: Regularizer, s: number): number {
  if (reg.power !== undefined) return reg.power * Math.pow(s, reg.power);
  let v = 0;
  for (const t of reg.terms) v += t.coef * t.p * t.p * Math.pow(s, t.p);
  return v;
}

/** The factor between ∂R/∂(log Λ) and the flux difference (p for Lp, 1 for a sum of powers). */
export function gradientScale(reg: Regularizer): number {
  return reg.power ?? 1;
}
