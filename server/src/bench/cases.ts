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
  /** Wall-clock budget of one paper-schedule run, after which it is reported as capped. */
  paperBudgetMs: number;
}

const PAPER_BUDGET_MS = 20_000;

const DEEP_SIZES = [256, ...Array.from({ length: 20 }, () => 256), 10];
const WIDE_SIZES = [784, 4096, 4096, 4096, 4096, 4096, 10];

export const CASES: readonly BenchCase[] = [
  {
    name: 'autoencoder',
    build: () => paperAutoencoder(SEED, 'float64'),
    layerChain: true,
    paperTarget: true,
    paperBudgetMs: PAPER_BUDGET_MS,
  },
  {
    name: 'deep-mlp',
    build: () => mlp({ name: 'mlp 256-(20×256)-10', sizes: DEEP_SIZES, seed: SEED, dtype: 'float64' }),
    layerChain: true,
    paperTarget: false,
    paperBudgetMs: PAPER_BUDGET_MS,
  },
  {
    name: 'wide-mlp',
    build: () => mlp({ name: 'mlp 784-(5×4096)-10 float32', sizes: WIDE_SIZES, seed: SEED, dtype: 'float32' }),
    layerChain: true,
    paperTarget: false,
    paperBudgetMs: PAPER_BUDGET_MS,
  },
  {
    name: 'rnn',
    build: () => rnn({ hidden: 1024, inputs: 64, outputs: 10, seed: SEED }),
    layerChain: false,
    paperTarget: false,
    // Its schedule is a few hundred whole-layer steps from the tolerance: a longer budget lets
    // it finish, so that its ratio is a measurement rather than a bound.
    paperBudgetMs: 45_000,
  },
];

export function caseNamed(name: string): BenchCase {
  const c = CASES.find((k) => k.name === name);
  if (!c) throw new Error(`no benchmark network named "${name}"; expected one of ${CASES.map((k) => k.name).join(', ')}`);
  return c;
}
