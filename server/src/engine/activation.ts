// Hidden-unit activations and their homogeneity: what decides whether a unit can be scaled.

/** BiLU: f(x) = neg·x for x < 0, pos·x for x >= 0. ReLU, leaky ReLU, PReLU, identity. */
export interface BiLU {
  kind: 'bilu';
  /** Slope for x < 0: one number for the group, or one per unit (PReLU per channel). */
  neg: number | readonly number[];
  pos: number;
  /** Human name kept for listings: relu, leaky_relu, prelu, identity. */
  name?: string;
}

/** BiPU: f(x) = pos·x^c for x >= 0, neg·|x|^c for x < 0; f(λx) = λ^c f(x). */
export interface BiPU {
  kind: 'bipu';
  degree: number;
  pos: number;
  neg: number;
  name?: string;
}

/** Any activation that is not positively homogeneous: units using it stay visible. */
export interface NonHomogeneous {
  kind: 'other';
  name: string;
}

export type Activation = BiLU | BiPU | NonHomogeneous;

export const relu = (): BiLU => ({ kind: 'bilu', neg: 0, pos: 1, name: 'relu' });
export const leakyRelu = (slope: number): BiLU => ({ kind: 'bilu', neg: slope, pos: 1, name: 'leaky_relu' });
export const prelu = (slopes: readonly number[]): BiLU => ({ kind: 'bilu', neg: slopes, pos: 1, name: 'prelu' });
export const identity = (): BiLU => ({ kind: 'bilu', neg: 1, pos: 1, name: 'identity' });
export const bipu = (degree: number, pos = 1, neg = 0): BiPU => ({ kind: 'bipu', degree, pos, neg, name: `bipu(${degree})` });
export const other = (name: string): NonHomogeneous => ({ kind: 'other', name });

/** The exponent c with f(λx) = λ^c f(x), or undefined when there is none. */
export function homogeneityDegree(a: Activation): number | undefined {
  if (a.kind === 'bilu') return 1;
  if (a.kind === 'bipu') return a.degree > 0 ? a.degree : undefined;
  return undefined;
}

export function activationName(a: Activation): string {
  if (a.name) return a.name;
  if (a.kind === 'bilu') return 'bilu';
  if (a.kind === 'bipu') return `bipu(${a.degree})`;
  return 'other';
}

/** Applies the activation of unit `unit` to a pre-activation value (used by forward passes). */
export function activate(a: Activation, unit: number, x: number): number {
  switch (a.kind) {
    case 'bilu': {
      if (x >= 0) return a.pos * x;
      const neg = typeof a.neg === 'number' ? a.neg : a.neg[unit];
      return neg * x;
    }
    case 'bipu':
      return x >= 0 ? a.pos * Math.pow(x, a.degree) : a.neg * Math.pow(-x, a.degree);
    case 'other':
      return applyNamed(a.name, x);
  }
}

function applyNamed(name: string, x: number): number {
  switch (name.toLowerCase()) {
    case 'tanh':
      return Math.tanh(x);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-x));
    case 'relu6':
    case 'clip':
      return Math.min(Math.max(x, 0), 6);
    case 'softplus':
      return Math.log1p(Math.exp(x));
    case 'gelu':
      return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    case 'silu':
    case 'swish':
      return x / (1 + Math.exp(-x));
    default:
      throw new Error(`no forward pass is known for activation "${name}"`);
  }
}
