// The four networks of the benchmark, each built from a fixed seed so that runs compare.
import type { Network } from '../engine/network';
import { mlp, paperAutoencoder, rnn } from '../examples/networks';

export const SEED = 1;

export interface BenchCase {
  /** Key for --one and --only. */
  name: string;
  build(): Network;
  /** A chain of layers (the red-black solver applies): solve/pass ≤ 10 is a target. */
  layerChain: boolean;
  /** The paper's own network: paper-schedule time / fast-solver time ≥ 50× is a target. */
  paperTarget: boolean;
}

const DEEP_SIZES = [256, ...Array.from({ length: 20 }, () => 256), 10];
const WIDE_SIZES = [784, 4096, 4096, 4096, 4096, 4096, 10];

export const CASES: readonly BenchCase[] = [
  {
    name: 'autoencoder',
    build: () => paperAutoencoder(SEED, 'float64'),
    layerChain: true,
    paperTarget: true,
  },
  {
    name: 'deep-mlp',
    build: () => mlp({ name: 'mlp 256-(20×256)-10', sizes: DEEP_SIZES, seed: SEED, dtype: 'float64' }),
    layerChain: true,
    paperTarget: false,
  },
  {
    name: 'wide-mlp',
    build: () => mlp({ name: 'mlp 784-(5×4096)-10 float32', sizes: WIDE_SIZES, seed: SEED, dtype: 'float32' }),
    layerChain: true,
    paperTarget: false,
  },
  {
    name: 'rnn',
    build: () => rnn({ hidden: 1024, inputs: 64, outputs: 10, seed: SEED }),
    layerChain: false,
    paperTarget: false,
  },
];

export function caseNamed(name: string): BenchCase {
  const c = CASES.find((k) => k.name === name);
  if (!c) throw new Error(`no benchmark network named "${name}"; expected one of ${CASES.map((k) => k.name).join(', ')}`);
  return c;
}
