// A balance logger for TensorFlow.js layers models: a callback for model.fit (or call log()
// from a custom loop) that appends balance-log records (server/schemas/balance-log.schema.json).
// It reads the model's own weights and needs no tf import of its own, so it works with
// whichever @tensorflow/tfjs(-node) the training script loaded. Bundled as dist/tfjsLogger.js.
//
// Hidden units: the output units (channels) of a Dense or Conv1D/Conv2D layer whose activation
// is relu or linear, followed in model.layers order — through Dropout, Flatten, pooling, and
// ReLU (without maxValue) / LeakyReLU / PReLU / Activation('relu'|'linear') layers — by another
// Dense or Conv layer. Layers are taken in model.layers order: a sequential chain.
import { appendFileSync } from 'node:fs';
import { encodeFloats, jsonScalar, LOG_VERSION } from '../contract/balanceLog';

/** The slice of a tfjs tensor this logger reads. */
export interface TensorLike {
  shape: number[];
  dataSync(): ArrayLike<number>;
}

/** The slice of a tfjs layer this logger reads. */
export interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): TensorLike[];
}

export interface LayersModelLike {
  layers: LayerLike[];
}

const WEIGHTED = new Set(['Dense', 'Conv1D', 'Conv2D']);
const PASS = new Set(['Dropout', 'SpatialDropout1D', 'Flatten', 'MaxPooling1D', 'MaxPooling2D', 'AveragePooling1D', 'AveragePooling2D', 'LeakyReLU', 'PReLU']);
const HOMOGENEOUS = new Set(['relu', 'linear']);

function passesScale(l: LayerLike): boolean {
  const cls = l.getClassName();
  if (PASS.has(cls)) return true;
  const cfg = l.getConfig();
  if (cls === 'ReLU') return cfg.maxValue === undefined || cfg.maxValue === null;
  if (cls === 'Activation') return HOMOGENEOUS.has(String(cfg.activation));
  return false;
}

export interface HiddenPair {
  layer: LayerLike;
  next: LayerLike;
}

/** The (layer, next weighted layer) pairs whose units are balanceable. */
export function hiddenPairs(model: LayersModelLike): HiddenPair[] {
  const pairs: HiddenPair[] = [];
  const ls = model.layers;
  for (let i = 0; i < ls.length; i++) {
    const l = ls[i];
    if (!WEIGHTED.has(l.getClassName()) || !HOMOGENEOUS.has(String(l.getConfig().activation ?? 'linear'))) continue;
    let j = i + 1;
    while (j < ls.length && passesScale(ls[j])) j++;
    if (j < ls.length && WEIGHTED.has(ls[j].getClassName())) pairs.push({ layer: l, next: ls[j] });
  }
  return pairs;
}

export interface LayerCosts {
  name: string;
  in: Float64Array;
  out: Float64Array;
  weightNorm: number;
}

/**
 * IN = Σ|w|^p of each unit's kernel column and bias; OUT = Σ|w|^p of the next kernel's entries
 * that read the unit. Kernels keep output units last and input units second to last (Dense
 * [in, out], Conv [..., in, out]); a channels-last Flatten between makes input i read unit i mod C.
 */
export function layerCosts(pair: HiddenPair, p: number): LayerCosts {
  const [kernel, bias] = pair.layer.getWeights();
  const units = kernel.shape[kernel.shape.length - 1];
  const inCost = new Float64Array(units);
  const pw = (v: number) => (p === 2 ? v * v : Math.abs(v) ** p);
  let sq = 0;
  const k = kernel.dataSync();
  for (let i = 0; i < k.length; i++) {
    inCost[i % units] += pw(k[i]);
    sq += k[i] * k[i];
  }
  if (bias) {
    const b = bias.dataSync();
    for (let u = 0; u < units; u++) {
      inCost[u] += pw(b[u]);
      sq += b[u] * b[u];
    }
  }
  const next = pair.next.getWeights()[0];
  const r = next.shape.length;
  const nOut = next.shape[r - 1];
  const nIn = next.shape[r - 2];
  if (nIn % units !== 0) throw new Error(`layer ${pair.next.name} reads ${nIn} inputs, not a multiple of ${pair.layer.name}'s ${units} units`);
  const outCost = new Float64Array(units);
  const w = next.dataSync();
  for (let i = 0; i < w.length; i++) outCost[Math.floor(i / nOut) % nIn % units] += pw(w[i]);
  return { name: pair.layer.name, in: inCost, out: outCost, weightNorm: Math.sqrt(sq) };
}

export interface TfjsBalanceLoggerOptions {
  /** The JSONL log to append to. */
  file?: string;
  /** Or where each line goes (instead of `file`). */
  write?: (line: string) => void;
  /** Log every this many batches (default 50), and before the first. */
  every?: number;
  /** Power of the regularizer Σ|w|^p (default 2). */
  p?: number;
  /** The run's name in the log. */
  run?: string;
}

export class TfjsBalanceLogger {
  /** Batches seen so far (the logged `step`). */
  step = 0;
  readonly every: number;
  readonly p: number;
  private readonly pairs: HiddenPair[];
  private readonly write: (line: string) => void;

  constructor(
    readonly model: LayersModelLike,
    private readonly opts: TfjsBalanceLoggerOptions = {},
  ) {
    this.every = Math.max(1, Math.floor(opts.every ?? 50));
    this.p = opts.p ?? 2;
    this.pairs = hiddenPairs(model);
    if (this.pairs.length === 0) throw new Error('no balanceable hidden layer: expected Dense/Conv layers with relu or linear activations followed by another Dense/Conv layer');
    const file = opts.file;
    if (opts.write) this.write = opts.write;
    else if (file) this.write = (line) => appendFileSync(file, line);
    else throw new Error('TfjsBalanceLogger needs `file` or `write`');
  }

  /** Names of the layers whose units are logged. */
  get layers(): string[] {
    return this.pairs.map((p) => p.layer.name);
  }

  /** Appends one record for `step` now (a custom training loop calls this itself). */
  log(step = this.step, extra: Record<string, unknown> = {}): void {
    const layers = this.pairs.map((pair) => {
      const c = layerCosts(pair, this.p);
      return { name: c.name, in: encodeFloats(c.in), out: encodeFloats(c.out), weightNorm: jsonScalar(c.weightNorm) };
    });
    const rec: Record<string, unknown> = { v: LOG_VERSION, ...(this.opts.run !== undefined ? { run: this.opts.run } : {}), step, time: Date.now() / 1000, p: this.p, layers, ...extra };
    this.write(JSON.stringify(rec) + '\n');
  }

  // Callback methods are arrow properties: tf's CustomCallback calls them detached from this object.
  onTrainBegin = async (): Promise<void> => {
    if (this.step === 0) this.log(0);
  };

  onBatchEnd = async (_batch: number, logs?: Record<string, unknown>): Promise<void> => {
    this.step++;
    if (this.step % this.every !== 0) return;
    const loss = logs?.loss;
    this.log(this.step, typeof loss === 'number' && Number.isFinite(loss) ? { loss } : {});
  };
}

/** `model.fit(x, y, { callbacks: balanceLogger(model, { file: 'balance.jsonl' }) })`. */
export function balanceLogger(model: LayersModelLike, opts: TfjsBalanceLoggerOptions): TfjsBalanceLogger {
  return new TfjsBalanceLogger(model, opts);
}
