// The training monitor's demo: a small ReLU MLP trained on a synthetic regression task three
// ways, each logged with the TF.js balance logger, showing the paper's claims (theory.md,
// "Claims to reproduce" 1): SGD with L2 drives the total deficit towards zero; plain SGD
// leaves it where it started; from a balanced start, a large learning rate without L2 loses
// the balance; and the same large learning rate with the network balanced again every 100
// steps (the logger's balance(), logged as balance events: the monitor's ticks).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoLogName, type DemoRunName } from '../contract/monitor';
import { applyScales } from '../engine/applyScales';
import { relu } from '../engine/activation';
import { balance } from '../engine/balance';
import { compile } from '../engine/compile';
import type { Connection, Network, UnitGroup } from '../engine/network';
import { normal, rng } from '../engine/random';
import { lp } from '../engine/regularizer';
import { makeTensor, tensorValues } from '../tensor/tensor';
import { TfjsBalanceLogger } from './tfjsLogger';

// The subset of the tfjs API the demo uses (the bundled @tensorflow/tfjs, or tfjs-node).
type Tf = typeof import('@tensorflow/tfjs');

export const SIZES = [16, 48, 48, 1] as const;

export interface RunSpec {
  name: DemoRunName;
  lr: number;
  l2: number;
  balancedStart: boolean;
  /** Balance (TfjsBalanceLogger.balanceNow) every this many steps, logging the event. */
  balanceEvery?: number;
}

export const RUNS: RunSpec[] = [
  { name: 'sgd', lr: 0.02, l2: 0, balancedStart: false },
  // IN − OUT of a unit decays by (1 − 4·lr·l2) per step under the L2 term alone (the error's
  // gradient flow conserves it): e^−2 in 500 steps here.
  { name: 'sgd-l2', lr: 0.02, l2: 0.05, balancedStart: false },
  // Five times the plain run's rate: the discrete steps' second-order terms break the balance.
  { name: 'balanced-large-lr', lr: 0.1, l2: 0, balancedStart: true },
  // The same, balanced again every 100 steps: the deficit grows back between the events.
  { name: 'rebalanced-large-lr', lr: 0.1, l2: 0, balancedStart: true, balanceEvery: 100 },
];

export interface DemoOptions {
  out: string;
  steps: number;
  logEvery: number;
  batch?: number;
  seed?: number;
  /** Progress lines (the CLI prints them). */
  report?: (line: string) => void;
}

export interface RunSummary {
  name: string;
  file: string;
  ms: number;
  finalLoss: number;
}

/** Kernel [in, out] and bias [out] per layer, He-initialised from a seeded generator. */
function initialWeights(seed: number): { kernel: Float32Array; bias: Float32Array }[] {
  const draw = normal(rng(seed));
  const out = [];
  for (let l = 1; l < SIZES.length; l++) {
    const fanIn = SIZES[l - 1];
    const std = Math.sqrt(2 / fanIn);
    const kernel = Float32Array.from({ length: fanIn * SIZES[l] }, () => std * draw());
    const bias = Float32Array.from({ length: SIZES[l] }, () => 0.1 * draw());
    out.push({ kernel, bias });
  }
  return out;
}

/** The MLP as the engine's network (tfjs kernels are [in, out]: the target unit is axis 1). */
export function networkOf(weights: { kernel: Float32Array; bias: Float32Array }[]): Network {
  const groups: UnitGroup[] = SIZES.map((size, l) =>
    l === 0 ? { name: 'input', size, role: 'input' } : l === SIZES.length - 1 ? { name: 'output', size, role: 'output' } : { name: `h${l}`, size, role: 'hidden', activation: relu() },
  );
  const tensors = weights.flatMap((w, k) => [makeTensor(`k${k}`, 'float32', [SIZES[k], SIZES[k + 1]], w.kernel), makeTensor(`b${k}`, 'float32', [SIZES[k + 1]], w.bias)]);
  const connections: Connection[] = weights.flatMap((_, k): Connection[] => [
    { tensor: `k${k}`, kind: 'dense', from: groups[k].name, to: groups[k + 1].name, source: { axis: 0 }, target: { axis: 1 } },
    { tensor: `b${k}`, kind: 'bias', to: groups[k + 1].name, target: { axis: 0 } },
  ]);
  return { name: 'demo mlp', groups, tensors, connections };
}

/** The same function with every hidden unit balanced (the engine's global optimum under L2). */
export function balancedWeights(weights: { kernel: Float32Array; bias: Float32Array }[]): { kernel: Float32Array; bias: Float32Array }[] {
  const problem = compile(networkOf(weights), lp(2));
  const solved = balance(problem, { tolerance: 1e-9, maxIterations: 10_000 });
  const net = applyScales(problem, solved.x);
  const get = (name: string) => Float32Array.from(tensorValues(net.tensors.find((t) => t.name === name)!));
  return weights.map((_, k) => ({ kernel: get(`k${k}`), bias: get(`b${k}`) }));
}

/** Targets from a fixed random teacher with a smooth nonlinearity: a task the MLP can learn. */
function dataset(seed: number, n: number): { x: Float32Array; y: Float32Array } {
  const draw = normal(rng(seed + 1000));
  const d = SIZES[0];
  const a = Float32Array.from({ length: d * 4 }, () => draw() / Math.sqrt(d));
  const x = Float32Array.from({ length: n * d }, () => draw());
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let h = 0; h < 4; h++) {
      let z = 0;
      for (let j = 0; j < d; j++) z += a[h * d + j] * x[i * d + j];
      v += Math.sin(z) + 0.5 * z;
    }
    y[i] = v / 2;
  }
  return { x, y };
}

interface LiveRun {
  /** One SGD step (and a log record every `logEvery` steps). */
  step(step: number): Promise<void>;
  finish(): RunSummary;
}

function startRun(tf: Tf, spec: RunSpec, opts: Required<Omit<DemoOptions, 'report'>>): LiveRun {
  const started = Date.now();
  const file = join(opts.out, demoLogName(spec.name));
  writeFileSync(file, '');
  let weights = initialWeights(opts.seed);
  if (spec.balancedStart) weights = balancedWeights(weights);
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ name: 'h1', units: SIZES[1], activation: 'relu', inputShape: [SIZES[0]] }),
      tf.layers.dense({ name: 'h2', units: SIZES[2], activation: 'relu' }),
      tf.layers.dense({ name: 'out', units: SIZES[3] }),
    ],
  });
  model.setWeights(weights.flatMap((w, k) => [tf.tensor2d(w.kernel, [SIZES[k], SIZES[k + 1]]), tf.tensor1d(w.bias)]));
  const logger = new TfjsBalanceLogger(model, { file, every: opts.logEvery, run: spec.name, tolerance: 1e-6 });
  const n = 2048;
  const data = dataset(opts.seed, n);
  const X = tf.tensor2d(data.x, [n, SIZES[0]]);
  const Y = tf.tensor2d(data.y, [n, 1]);
  const pick = rng(opts.seed + 7);
  const optimizer = tf.train.sgd(spec.lr);
  const vars = model.trainableWeights.map((w) => w.read() as import('@tensorflow/tfjs').Variable);
  const decay = 1 - 2 * spec.lr * spec.l2;
  logger.log(0);
  let loss = NaN;
  return {
    async step(step: number): Promise<void> {
      const idx = tf.tensor1d(Int32Array.from({ length: opts.batch }, () => Math.floor(pick() * n)), 'int32');
      const xb = tf.gather(X, idx);
      const yb = tf.gather(Y, idx);
      const balanceNow = spec.balanceEvery !== undefined && step % spec.balanceEvery === 0;
      const wantLoss = step % opts.logEvery === 0 || balanceNow;
      const cost = optimizer.minimize(
        () => {
          const pred = model.apply(xb) as import('@tensorflow/tfjs').Tensor;
          return tf.losses.meanSquaredError(yb, pred) as import('@tensorflow/tfjs').Scalar;
        },
        wantLoss,
        vars,
      );
      // The L2 term's gradient step, w ← w − lr·2·l2·w, applied directly: the same SGD on
      // error + l2·Σw² as differentiating the sum, with a third of the ops.
      if (spec.l2 > 0) tf.tidy(() => vars.forEach((v) => v.assign(v.mul(decay))));
      tf.dispose([idx, xb, yb]);
      if (cost) {
        loss = (await cost.data())[0];
        cost.dispose();
      }
      const extra = Number.isFinite(loss) ? { loss } : {};
      // A balance event's record is the step's record (the balanced state): not logged twice.
      if (balanceNow) logger.balanceNow(step, extra);
      else if (wantLoss) logger.log(step, extra);
    },
    finish(): RunSummary {
      tf.dispose([X, Y]);
      model.dispose();
      optimizer.dispose();
      return { name: spec.name, file, ms: Date.now() - started, finalLoss: loss };
    },
  };
}

export async function runDemo(tf: Tf, opts: DemoOptions): Promise<RunSummary[]> {
  const full = { out: opts.out, steps: opts.steps, logEvery: opts.logEvery, batch: opts.batch ?? 32, seed: opts.seed ?? 1 };
  mkdirSync(opts.out, { recursive: true });
  // The runs advance in lockstep, so a monitor following their logs compares them live.
  const runs = RUNS.map((spec) => startRun(tf, spec, full));
  for (let step = 1; step <= full.steps; step++) for (const r of runs) await r.step(step);
  const report = opts.report ?? (() => undefined);
  return runs.map((r) => {
    const s = r.finish();
    report(`${s.name}: ${full.steps} steps, final loss ${s.finalLoss.toPrecision(3)} → ${s.file}`);
    return s;
  });
}
