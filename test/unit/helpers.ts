// Shared fixtures for the engine's property tests: networks of several shapes, regularizers,
// random inputs and comparisons.
import { bipu, identity, leakyRelu, prelu } from '../../server/src/engine/activation';
import { tensorValues } from '../../server/src/tensor/tensor';
import type { Network } from '../../server/src/engine/network';
import { forward } from '../../server/src/engine/forward';
import { lp, powerSum, type Regularizer } from '../../server/src/engine/regularizer';
import { normal, rng } from '../../server/src/engine/random';
import { convNet, mlp, residualNet, rnn } from '../../server/src/examples/networks';

export interface Shape {
  name: string;
  build: (seed: number) => Network;
  /** Time steps for the forward pass (recurrent nets). */
  steps?: number;
}

export const SHAPES: Shape[] = [
  { name: 'relu mlp with biases', build: (s) => mlp({ sizes: [5, 7, 6, 4], seed: s, std: 0.5 }) },
  { name: 'relu mlp without biases', build: (s) => mlp({ sizes: [5, 7, 6, 4], seed: s, bias: false, std: 0.5 }) },
  { name: 'leaky relu mlp', build: (s) => mlp({ sizes: [4, 6, 6, 5, 3], seed: s, activation: leakyRelu(0.1), std: 0.5 }) },
  {
    name: 'prelu + identity mlp',
    build: (s) => mlp({ sizes: [4, 5, 6, 3], seed: s, std: 0.5, activation: (l) => (l === 0 ? prelu([0.1, 0.2, 0.3, -0.2, 0.5]) : identity()) }),
  },
  { name: 'conv net', build: (s) => convNet({ seed: s }) },
  { name: 'conv net with batchnorm', build: (s) => convNet({ seed: s, batchnorm: true }) },
  { name: 'grouped conv net', build: (s) => convNet({ seed: s, channels: [2, 4, 4], groups: 2, activation: leakyRelu(0.05) }) },
  { name: 'recurrent relu net', build: (s) => rnn({ hidden: 7, seed: s, std: 0.5 }), steps: 4 },
  { name: 'residual + skip', build: (s) => residualNet(s) },
];

export const REGULARIZERS: Regularizer[] = [lp(0.5), lp(1), lp(2), lp(3), powerSum([{ coef: 1, p: 2 }, { coef: 0.5, p: 1 }])];

export function bipuNet(seed: number, degree = 2): Network {
  return mlp({ sizes: [4, 5, 3], seed, std: 0.6, activation: bipu(degree, 1, 0.5) });
}

/** Random inputs for every input group, one array per step. */
export function randomInputs(net: Network, seed: number, steps = 1): Map<string, Float64Array[]> {
  const draw = normal(rng(seed));
  const m = new Map<string, Float64Array[]>();
  for (const g of net.groups) {
    if (g.role !== 'input') continue;
    const S = (g.spatial ?? []).reduce((a, b) => a * b, 1);
    m.set(g.name, Array.from({ length: steps }, () => Float64Array.from({ length: g.size * S }, draw)));
  }
  return m;
}

/** Output values of every output group over all steps, concatenated. */
export function outputs(net: Network, inputs: Map<string, Float64Array[]>, steps = 1): Float64Array {
  const vals = forward(net, inputs, steps);
  const parts: number[] = [];
  for (const g of net.groups) if (g.role === 'output') for (const v of vals.get(g.name)!) parts.push(...v);
  return Float64Array.from(parts);
}

/** max |a − b| / max(|a|, |b|, floor) elementwise. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-12): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(Math.abs(a[i]), Math.abs(b[i]), floor);
    if (d > m) m = d;
  }
  return m;
}

/** All weights of a network as float64, in tensor order. */
export function allWeights(net: Network): Float64Array {
  const parts: number[] = [];
  for (const t of net.tensors) parts.push(...tensorValues(t));
  return Float64Array.from(parts);
}
