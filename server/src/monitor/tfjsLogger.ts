// A balance logger for TensorFlow.js layers models: a callback for model.fit (or call log()
// from a custom loop) that appends balance-log records (server/schemas/balance-log.schema.json).
// It reads the model's own weights and needs no tf import of its own, so it works with
// whichever @tensorflow/tfjs(-node) the training script loaded. Bundled as dist/tfjsLogger.js.
//
// Hidden units: the output units (channels) of a Dense or Conv1D/Conv2D layer whose activation
// is relu or linear, followed in model.layers order — through Dropout, Flatten, pooling, and
// ReLU (without maxValue) / LeakyReLU / PReLU / Activation('relu'|'linear') layers — by another
// Dense or Conv layer. Layers are taken in model.layers order: a sequential chain.
//
// balance(model) acts on those units: it rescales them to the global optimum of Σ|w|^p and
// writes the weights back (setWeights), using only the model's own tensors' methods (reshape,
// mul): still no tf import. The logger's `balanceEvery` option does it between epochs and logs
// the event (the record's `balance` field).
import { appendFileSync } from 'node:fs';
import { encodeFloats, jsonScalar, LOG_VERSION } from '../contract/balanceLog';

/** The slice of a tfjs tensor this logger reads (and, to balance, scales). */
export interface TensorLike {
  shape: number[];
  dtype?: string;
  dataSync(): ArrayLike<number>;
  reshape?(newShape: number[]): TensorLike;
  /** Elementwise product with a same-shape float32 array (tf converts it to a tensor). */
  mul?(b: Float32Array): TensorLike;
  dispose?(): void;
}

/** The slice of a tfjs layer this logger reads (and, to balance, writes). */
export interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): TensorLike[];
  setWeights?(weights: TensorLike[]): void;
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

// ------------------------------------------------------------------ balancing

export interface TfjsBalanceOptions {
  /** Power of the regularizer Σ|w|^p (default 2). */
  p?: number;
  /** Stop when every unit's relative deficit |IN − OUT|/(IN + OUT) is at most this (default 1e-7). */
  tolerance?: number;
  /** At most this many red-black sweeps (default 10,000). */
  maxIterations?: number;
}

export interface TfjsBalanceResult {
  /** R = Σ|w|^p over the kernels and biases of the layers the hidden units touch, before and after (as written). */
  RBefore: number;
  RAfter: number;
  /** RBefore − RAfter. */
  deltaR: number;
  /** Red-black sweeps. */
  iterations: number;
  converged: boolean;
  /** Largest relative deficit of a live unit before, and after as measured on the written weights. */
  maxDeficitBefore: number;
  maxDeficit: number;
  /** Balanceable units. */
  units: number;
}

/** The weights of one layer the balancing reads or writes, as float64 copies. */
interface LayerData {
  layer: LayerLike;
  weights: TensorLike[];
  kernel: Float64Array;
  bias: Float64Array | null;
  nIn: number;
  nOut: number;
  /** |w|^p of the kernel. */
  kpow: Float64Array;
  bpow: Float64Array | null;
}

/** A group of hidden units: a pair's output units, with the groups beside it in the chain. */
interface Group {
  units: number;
  own: LayerData;
  next: LayerData;
  /** The group whose units the own kernel's rows read (its `next` is our layer), or -1. */
  prev: number;
  /** The group whose layer is our `next`, or -1. */
  after: number;
  /** log λ per unit. */
  x: Float64Array;
}

function powOf(p: number): (v: number) => number {
  return p === 2 ? (v) => v * v : p === 1 ? Math.abs : (v) => Math.abs(v) ** p;
}

function layerData(layer: LayerLike, pw: (v: number) => number): LayerData {
  const weights = layer.getWeights();
  const [k, b] = weights;
  const kernel = Float64Array.from(k.dataSync());
  const bias = b ? Float64Array.from(b.dataSync()) : null;
  const r = k.shape.length;
  return {
    layer, weights, kernel, bias,
    nIn: k.shape[r - 2], nOut: k.shape[r - 1],
    kpow: kernel.map(pw), bpow: bias ? bias.map(pw) : null,
  };
}

/** IN and OUT costs at λ = 1 given the neighbours' current scales: a (incoming), b (outgoing). */
function groupCosts(gs: Group[], g: number, p: number): { a: Float64Array; b: Float64Array } {
  const G = gs[g];
  const U = G.units;
  const a = new Float64Array(U);
  const b = new Float64Array(U);
  const { kpow, nIn, nOut, bpow } = G.own;
  // Incoming: the kernel's column u, each row weighted by the previous group's 1/λ^p.
  const prev = G.prev >= 0 ? gs[G.prev] : null;
  const rowF = prev ? prev.x.map((v) => Math.exp(-p * v)) : null;
  for (let e = 0, row = 0; e < kpow.length; row = (row + 1) % nIn) {
    const f = rowF ? rowF[row % prev!.units] : 1;
    for (let c = 0; c < nOut; c++, e++) a[c] += kpow[e] * f;
  }
  if (bpow) for (let u = 0; u < U; u++) a[u] += bpow[u];
  // Outgoing: the next kernel's rows that read unit u, each column weighted by the next group's λ^p.
  const nx = G.next;
  const colF = G.after >= 0 ? gs[G.after].x.map((v) => Math.exp(p * v)) : null;
  for (let e = 0, row = 0; e < nx.kpow.length; row = (row + 1) % nx.nIn) {
    const u = row % U;
    let sum = 0;
    if (colF) for (let c = 0; c < nx.nOut; c++, e++) sum += nx.kpow[e] * colF[c];
    else for (let c = 0; c < nx.nOut; c++, e++) sum += nx.kpow[e];
    b[u] += sum;
  }
  return { a, b };
}

function worstDeficit(gs: Group[], p: number): number {
  let worst = 0;
  for (let g = 0; g < gs.length; g++) {
    const { a, b } = groupCosts(gs, g, p);
    const x = gs[g].x;
    for (let u = 0; u < x.length; u++) {
      if (!(a[u] > 0 && b[u] > 0)) continue;
      const e = Math.exp(p * x[u]);
      const i = e * a[u];
      const o = b[u] / e;
      const d = Math.abs(i - o) / (i + o);
      if (d > worst) worst = d;
    }
  }
  return worst;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 next to `v` (towards +∞ when up, else towards −∞); v finite and nonzero. */
function nextFloat32(v: number, up: boolean): number {
  f32[0] = v;
  // Positive floats order like their bits; negative ones the other way round.
  u32[0] += (v > 0) === up ? 1 : -1;
  return f32[0];
}

/**
 * Float32 factors g such that w·g in float32 is fround(w·factor) (the product taken in float64,
 * rounded once): tf multiplies in float32, so a float64 factor is written exactly.
 */
function exactFactors(w: ArrayLike<number>, factor: Float64Array): Float32Array {
  const g = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const wi = w[i];
    const want = Math.fround(wi * factor[i]);
    let c = Math.fround(factor[i]);
    if (wi !== 0 && Number.isFinite(wi) && Math.fround(wi * c) !== want) {
      const q = Math.fround(want / wi);
      if (Number.isFinite(q) && q !== 0) {
        c = q;
        for (const up of [true, false]) {
          if (Math.fround(wi * c) === want) break;
          const n = nextFloat32(q, up);
          if (Math.fround(wi * n) === want) c = n;
        }
      }
    }
    g[i] = c;
  }
  return g;
}

function scaledTensor(t: TensorLike, data: ArrayLike<number>, factor: Float64Array, layer: string): TensorLike {
  if (!t.reshape || !t.mul) throw new Error(`layer ${layer}: its weights have no reshape()/mul(): balance() needs tf tensors`);
  if (t.dtype !== undefined && t.dtype !== 'float32') throw new Error(`layer ${layer}: weights of dtype ${t.dtype}; balance() scales float32 weights`);
  const flat = t.reshape([data.length]);
  const scaled = flat.mul!(exactFactors(data, factor));
  const out = scaled.reshape!(t.shape);
  flat.dispose?.();
  scaled.dispose?.();
  return out;
}

function regularizer(ls: Iterable<LayerData>): number {
  let R = 0;
  for (const l of ls) {
    for (let i = 0; i < l.kpow.length; i++) R += l.kpow[i];
    if (l.bpow) for (let i = 0; i < l.bpow.length; i++) R += l.bpow[i];
  }
  return R;
}

/**
 * Balances the model's hidden units (those the logger logs) in place: each unit's incoming
 * weights and bias × λ, outgoing × 1/λ (the same function), λ at the unique minimum of Σ|w|^p
 * over those scalings. Red-black sweeps over the chain of groups, each unit taking its
 * closed-form optimum λ = (OUT/IN)^(1/(2p)) given its neighbours' scales, until every relative
 * deficit ≤ tolerance. Costs in float64; each layer's kernel and bias is written once with
 * setWeights, in float32, as fround(w·λ) of the float64 product. Dead units (IN or OUT = 0)
 * are left alone. Optimizer state (momentum, Adam moments) is not rescaled.
 */
export function balance(model: LayersModelLike, opts: TfjsBalanceOptions = {}): TfjsBalanceResult {
  const p = opts.p ?? 2;
  if (!(p > 0)) throw new Error(`p must be > 0, not ${p}`);
  const tolerance = opts.tolerance ?? 1e-7;
  const maxIterations = opts.maxIterations ?? 10_000;
  const pairs = hiddenPairs(model);
  if (pairs.length === 0) throw new Error('no balanceable hidden layer: expected Dense/Conv layers with relu or linear activations followed by another Dense/Conv layer');
  const pw = powOf(p);
  const data = new Map<LayerLike, LayerData>();
  const dataOf = (l: LayerLike) => {
    let d = data.get(l);
    if (!d) data.set(l, (d = layerData(l, pw)));
    return d;
  };
  const gs: Group[] = pairs.map((pair) => {
    const own = dataOf(pair.layer);
    const next = dataOf(pair.next);
    if (next.nIn % own.nOut !== 0) throw new Error(`layer ${pair.next.name} reads ${next.nIn} inputs, not a multiple of ${pair.layer.name}'s ${own.nOut} units`);
    return { units: own.nOut, own, next, prev: -1, after: -1, x: new Float64Array(own.nOut) };
  });
  const colour: number[] = [];
  gs.forEach((g, i) => {
    g.prev = gs.findIndex((h) => h.next === g.own);
    g.after = gs.findIndex((h) => h.own === g.next);
    if (g.prev >= 0 && g.own.nIn % gs[g.prev].units !== 0) throw new Error(`layer ${pairs[i].layer.name} reads ${g.own.nIn} inputs, not a multiple of ${pairs[g.prev].layer.name}'s ${gs[g.prev].units} units`);
    // Neighbours in the chain get different colours: a group's update then reads fixed scales.
    colour.push(g.prev >= 0 ? 1 - colour[g.prev] : 0);
  });
  const RBefore = regularizer(data.values());
  const maxDeficitBefore = worstDeficit(gs, p);
  let worst = maxDeficitBefore;
  let iterations = 0;
  while (worst > tolerance && iterations < maxIterations) {
    iterations++;
    for (const c of [0, 1]) {
      for (let g = 0; g < gs.length; g++) {
        if (colour[g] !== c) continue;
        const { a, b } = groupCosts(gs, g, p);
        const x = gs[g].x;
        for (let u = 0; u < x.length; u++) if (a[u] > 0 && b[u] > 0) x[u] = (Math.log(b[u]) - Math.log(a[u])) / (2 * p);
      }
    }
    worst = worstDeficit(gs, p);
  }
  if (iterations > 0) {
    // Each layer once: its kernel's columns × its own group's λ, rows × 1/λ of the group it reads.
    for (const d of data.values()) {
      const g = gs.find((h) => h.own === d);
      const h = gs.find((k) => k.next === d);
      const lam = g ? g.x.map(Math.exp) : null;
      const inv = h ? h.x.map((v) => Math.exp(-v)) : null;
      const kf = new Float64Array(d.kernel.length);
      for (let e = 0, row = 0; e < kf.length; row = (row + 1) % d.nIn) {
        const r = inv ? inv[row % h!.units] : 1;
        for (let c = 0; c < d.nOut; c++, e++) kf[e] = r * (lam ? lam[c] : 1);
      }
      const name = d.layer.name;
      if (!d.layer.setWeights) throw new Error(`layer ${name} has no setWeights(): balance() needs a tf layer`);
      const written: TensorLike[] = [scaledTensor(d.weights[0], d.kernel, kf, name)];
      if (d.bias) written.push(lam ? scaledTensor(d.weights[1], d.bias, lam, name) : d.weights[1]);
      d.layer.setWeights([...written, ...d.weights.slice(written.length)]);
      written[0].dispose?.();
      if (d.bias && lam) written[1].dispose?.();
    }
  }
  // R and the deficits again from the weights as written (float32).
  const after = new Map<LayerLike, LayerData>();
  for (const l of data.keys()) after.set(l, layerData(l, pw));
  const RAfter = iterations > 0 ? regularizer(after.values()) : RBefore;
  let maxDeficit = 0;
  for (const pair of pairs) {
    const c = layerCosts(pair, p);
    for (let u = 0; u < c.in.length; u++) {
      if (!(c.in[u] > 0 && c.out[u] > 0)) continue;
      maxDeficit = Math.max(maxDeficit, Math.abs(c.in[u] - c.out[u]) / (c.in[u] + c.out[u]));
    }
  }
  return {
    RBefore, RAfter, deltaR: RBefore - RAfter, iterations, converged: worst <= tolerance,
    maxDeficitBefore, maxDeficit, units: gs.reduce((n, g) => n + g.units, 0),
  };
}

/** The record's `balance` field for a balancing's result (server/schemas/balance-log.schema.json). */
export function balanceEvent(r: TfjsBalanceResult): Record<string, unknown> {
  return { deltaR: jsonScalar(r.deltaR), RBefore: jsonScalar(r.RBefore), RAfter: jsonScalar(r.RAfter), iterations: r.iterations, maxDeficit: jsonScalar(r.maxDeficit), converged: r.converged };
}

// ------------------------------------------------------------------ the logger

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
  /** Balance the model (balance()) after every this many epochs of model.fit, and log the event. */
  balanceEvery?: number;
  /** balance()'s tolerance for `balanceEvery` (default 1e-7). */
  tolerance?: number;
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

  /** Balancings done so far (balanceNow, or `balanceEvery` epochs). */
  readonly events: (TfjsBalanceResult & { step: number })[] = [];

  /** Balances the model now and logs the balanced state at `step` with the event (a custom loop calls this itself). */
  balanceNow(step = this.step, extra: Record<string, unknown> = {}): TfjsBalanceResult {
    const r = balance(this.model, { p: this.p, tolerance: this.opts.tolerance });
    this.events.push({ ...r, step });
    this.log(step, { ...extra, balance: balanceEvent(r) });
    return r;
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

  onEpochEnd = async (epoch: number): Promise<void> => {
    const k = this.opts.balanceEvery;
    if (k === undefined || k <= 0 || (epoch + 1) % Math.floor(k) !== 0) return;
    this.balanceNow(this.step);
  };
}

/** `model.fit(x, y, { callbacks: balanceLogger(model, { file: 'balance.jsonl' }) })`. */
export function balanceLogger(model: LayersModelLike, opts: TfjsBalanceLoggerOptions): TfjsBalanceLogger {
  return new TfjsBalanceLogger(model, opts);
}
