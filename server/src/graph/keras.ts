// From a Keras model config (Sequential or functional, Keras 2 or 3) to the engine's Network.
// Each weighted layer (Dense, Conv*, depthwise, separable) makes a group of units, one per
// output channel. The layers after it that act per channel — BatchNormalization, activations,
// pooling — fold into that group while the engine's order allows (BN → activation → pool) and
// nothing else reads the intermediate value; otherwise they get a group of their own, joined
// to their input by a skip connection (which ties the two scales). A residual Add is such a
// group with several skips; a Concatenate is kept as parts that its readers connect to one by
// one. Layers that do not pass a positive scale through keep the units feeding them fixed,
// and their outputs count as network inputs.
import { identity, type Activation } from '../engine/activation';
import type { Connection, Network, UnitGroup } from '../engine/network';
import { isFloatDType, loadTensor, type Checkpoint, type TensorEntry } from '../formats/core/checkpoint';
import { fieldActivation, forwardKnown, leakyLayer, otherActivationLayer, preluLayer, reluLayer } from '../formats/keras/activations';
import type { KerasLayer, TensorRef } from '../formats/keras/config';
import { convOutput, known, padAfter, padBefore, poolOutput, transposedOutput, tuple, type Dim } from '../formats/keras/geometry';
import { kerasStructureOf, type KerasStructure } from '../formats/keras/structure';
import { tensorValues, type Tensor } from '../tensor/tensor';
import type { BuiltNetwork } from '../formats/core/format';

/** How far a group's output has gone down the engine's fixed order. */
const LINEAR = 0;
const NORMALIZED = 1;
const ACTIVATED = 2;
const POOLED = 3;
type Stage = typeof LINEAR | typeof NORMALIZED | typeof ACTIVATED | typeof POOLED;

interface Slot {
  group: UnitGroup;
  stage: Stage;
  /** The Keras layer whose output the group's values now are; only it may fold further ops in. */
  head: string;
  visible: { reason: string }[];
}

interface Padding {
  before: number[];
  after: number[];
}

/** A Keras tensor as the builder sees it. Shapes have no batch axis and end with channels. */
type Value =
  | { kind: 'group'; group: string; from: string; shape: Dim[]; flat: boolean; pad?: Padding }
  | { kind: 'parts'; parts: { group: string; channels: number }[]; shape: Dim[] }
  | { kind: 'free'; name: string; shape?: Dim[] };

const ALIASES = new Set([
  'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout',
  'ActivityRegularization', 'Identity',
]);
const ACTIVATION_LAYERS = new Set(['Activation', 'ReLU', 'LeakyReLU', 'PReLU', 'ELU', 'Softmax', 'ThresholdedReLU']);
const CONV = /^Conv(?:olution)?([123])D$/;
const CONV_T = /^Conv(?:olution)?([123])DTranspose$/;
const DEPTHWISE = /^DepthwiseConv([12])D$/;
const SEPARABLE = /^SeparableConv(?:olution)?([12])D$/;
const POOL = /^(Max|Average|Avg)Pool(?:ing)?([123])D$/;
const GLOBAL_POOL = /^Global(Max|Average|Avg)Pool(?:ing)?([123])D$/;
const ZERO_PAD = /^ZeroPadding([123])D$/;

class Unsupported extends Error {}

function product(dims: readonly Dim[]): Dim {
  let n = 1;
  for (const d of dims) {
    if (d === null) return null;
    n *= d;
  }
  return n;
}

function channelsOf(v: Value): Dim {
  if (v.kind === 'free') return v.shape ? v.shape[v.shape.length - 1] ?? null : null;
  return v.shape[v.shape.length - 1] ?? null;
}

function sameDims(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === null || b[i] === null || d === b[i]);
}

class KerasGraph {
  private readonly groups: UnitGroup[] = [];
  private readonly slots = new Map<string, Slot>();
  private readonly connections: Connection[] = [];
  private readonly tensors = new Map<string, Tensor>();
  private readonly notes: string[] = [];
  private readonly caveats = new Set<string>();
  private readonly values = new Map<string, Value>();
  private readonly uses = new Map<string, number>();
  private readonly weights = new Map<string, Map<string, string>>();
  private readonly entries: Map<string, TensorEntry>;

  constructor(
    private readonly cp: Checkpoint,
    private readonly s: KerasStructure,
  ) {
    this.entries = new Map(cp.tensors.map((t) => [t.name, t]));
    for (const w of s.weights) {
      let m = this.weights.get(w.layer);
      if (!m) this.weights.set(w.layer, (m = new Map()));
      m.set(w.role, w.tensor);
    }
  }

  build(): BuiltNetwork {
    const model = this.s.model;
    this.notes.push(`topology from the Keras ${this.s.kerasVersion ?? (model.generation === 3 ? '3' : '2')} config of ${model.className} model "${model.name}" (${model.layers.length} layers)`);
    const order = this.order();
    for (const l of model.layers) for (const call of l.calls) for (const r of call) this.uses.set(r.layer, (this.uses.get(r.layer) ?? 0) + 1);
    for (const r of model.outputs) this.uses.set(r.layer, (this.uses.get(r.layer) ?? 0) + 1);
    for (const layer of order) this.layer(layer);
    this.markOutputs(model.outputs);
    return { network: this.network(), notes: [...this.notes, ...this.caveatNote()] };
  }

  // ---------------------------------------------------------------- graph walk

  private order(): KerasLayer[] {
    const byName = new Map(this.s.model.layers.map((l) => [l.name, l]));
    const state = new Map<string, 1 | 2>();
    const out: KerasLayer[] = [];
    const visit = (l: KerasLayer, path: string[]) => {
      const st = state.get(l.name);
      if (st === 2) return;
      if (st === 1) throw new Error(`the model config has a cycle through ${[...path, l.name].join(' → ')}`);
      state.set(l.name, 1);
      for (const call of l.calls) {
        for (const r of call) {
          const src = byName.get(r.layer);
          if (!src) throw new Error(`layer ${l.name} reads "${r.layer}", which is not a layer of the model`);
          visit(src, [...path, l.name]);
        }
      }
      state.set(l.name, 2);
      out.push(l);
    };
    for (const l of this.s.model.layers) visit(l, []);
    for (const r of [...this.s.model.inputs, ...this.s.model.outputs]) {
      if (!byName.has(r.layer)) throw new Error(`the model's inputs or outputs name "${r.layer}", which is not a layer of the model`);
    }
    return out;
  }

  private valueOf(r: TensorRef): Value {
    const v = this.values.get(`${r.layer}:${r.node}`);
    if (!v) throw new Error(`layer ${r.layer} has no output #${r.node} (node ${r.node} of a layer called fewer times)`);
    return v;
  }

  private layer(layer: KerasLayer): void {
    const cls = layer.className;
    if (cls === 'InputLayer') {
      this.values.set(`${layer.name}:0`, this.input(layer));
      return;
    }
    if (layer.calls.length !== 1) {
      const inputs = layer.calls.flat().map((r) => this.valueOf(r));
      const why = layer.calls.length === 0 ? 'it is never called' : `it is applied ${layer.calls.length} times (shared weights)`;
      const v = this.opaque(layer, inputs, why);
      layer.calls.forEach((_, i) => this.values.set(`${layer.name}:${i}`, v));
      return;
    }
    const inputs = layer.calls[0].map((r) => this.valueOf(r));
    let v: Value;
    try {
      v = this.dispatch(layer, inputs);
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      v = this.opaque(layer, inputs, e.message);
    }
    this.values.set(`${layer.name}:0`, v);
  }

  private dispatch(layer: KerasLayer, inputs: Value[]): Value {
    const cls = layer.className;
    const cfg = layer.config;
    if (cfg.data_format === 'channels_first') throw new Unsupported('data_format channels_first is not supported');
    const one = (): Value => {
      if (inputs.length !== 1) throw new Error(`layer ${layer.name} (${cls}) reads ${inputs.length} tensors; it takes one`);
      return inputs[0];
    };
    let m: RegExpMatchArray | null;
    if (cls === 'Dense') return this.dense(layer, one());
    if ((m = cls.match(CONV))) return this.conv(layer, one(), Number(m[1]), false);
    if ((m = cls.match(CONV_T))) return this.conv(layer, one(), Number(m[1]), true);
    if ((m = cls.match(DEPTHWISE))) return this.depthwise(layer, one(), Number(m[1]));
    if ((m = cls.match(SEPARABLE))) return this.separable(layer, one(), Number(m[1]));
    if (cls === 'BatchNormalization') return this.batchnorm(layer, one());
    if (ACTIVATION_LAYERS.has(cls)) return this.activation(layer, one());
    if ((m = cls.match(POOL))) return this.pool(layer, one(), m[1] === 'Max' ? 'max' : 'avg', Number(m[2]), false);
    if ((m = cls.match(GLOBAL_POOL))) return this.pool(layer, one(), m[1] === 'Max' ? 'max' : 'avg', Number(m[2]), true);
    if ((m = cls.match(ZERO_PAD))) return this.zeroPad(layer, one(), Number(m[1]));
    if (cls === 'Flatten') return this.flatten(layer, one());
    if (cls === 'Reshape') return this.reshape(layer, one());
    if (ALIASES.has(cls)) return this.alias(layer, one());
    if (cls === 'Add') return this.add(layer, inputs);
    if (cls === 'Concatenate') return this.concat(layer, inputs);
    if (cls === 'Functional' || cls === 'Sequential' || cls === 'Model') throw new Unsupported('nested models are not looked into');
    throw new Unsupported(`${cls} layers are not supported`);
  }

  // ---------------------------------------------------------------- groups and values

  private addGroup(group: UnitGroup, layer: string, stage: Stage): Slot {
    if (this.slots.has(group.name)) throw new Error(`two groups would be named "${group.name}"`);
    const slot: Slot = { group, stage, head: layer, visible: [] };
    this.groups.push(group);
    this.slots.set(group.name, slot);
    return slot;
  }

  private slot(name: string): Slot {
    const s = this.slots.get(name);
    if (!s) throw new Error(`internal: no group ${name}`);
    return s;
  }

  private input(layer: KerasLayer): Value {
    const shape = layer.inputShape;
    const channels = shape?.[shape.length - 1];
    if (!shape || shape.length === 0 || channels === null || channels === undefined) return { kind: 'free', name: layer.name, shape };
    this.inputGroup(layer.name, channels, shape);
    return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
  }

  private inputGroup(name: string, size: number, shape: Dim[] | undefined): string {
    const existing = this.slots.get(name);
    if (existing) {
      if (existing.group.size !== size) throw new Error(`input ${name} is read as ${existing.group.size} and as ${size} channels`);
      return name;
    }
    const group: UnitGroup = { name, size, role: 'input' };
    const spatial = shape?.slice(0, -1) ?? [];
    if (spatial.length && known(spatial)) group.spatial = spatial;
    this.addGroup(group, name, POOLED);
    return name;
  }

  /** A free value as the network input it stands for, sized by what reads it. */
  private materialize(v: Extract<Value, { kind: 'free' }>, channels?: number): Extract<Value, { kind: 'group' }> {
    const size = channels ?? channelsOf(v);
    if (size === null || size === undefined) throw new Unsupported(`the size of ${v.name} is unknown`);
    const shape = v.shape && v.shape[v.shape.length - 1] === size ? v.shape : [size];
    this.inputGroup(v.name, size, shape);
    return { kind: 'group', group: v.name, from: v.name, shape, flat: false };
  }

  private asGroup(v: Value, what: string): Extract<Value, { kind: 'group' }> {
    if (v.kind === 'free') return this.materialize(v);
    if (v.kind === 'parts') throw new Unsupported(`${what} over a concatenation is not supported`);
    if (v.pad) throw new Unsupported(`${what} of zero-padded values is not supported`);
    return v;
  }

  /** The group a per-channel op can fold into, when nothing else reads its current output. */
  private foldable(v: Extract<Value, { kind: 'group' }>, maxStage: Stage): Slot | undefined {
    const slot = this.slot(v.group);
    if (slot.group.role === 'input' || slot.stage > maxStage) return undefined;
    return slot.head === v.from && this.uses.get(v.from) === 1 ? slot : undefined;
  }

  /** A new identity group that carries `v` on (a skip connection ties its scale to the source). */
  private passGroup(name: string, v: Extract<Value, { kind: 'group' }>, layer: string): Slot {
    const src = this.slot(v.group).group;
    const group: UnitGroup = { name, size: src.size, role: 'hidden', activation: identity(), activationSource: `${layer} (passes values on)` };
    if (src.spatial) group.spatial = src.spatial;
    this.connections.push({ kind: 'skip', from: src.name, to: name, target: { axis: 0 } });
    return this.addGroup(group, layer, LINEAR);
  }

  private alias(layer: KerasLayer, v: Value): Value {
    if (v.kind !== 'group') return v;
    const slot = this.slot(v.group);
    if (slot.head === v.from && this.uses.get(v.from) === 1) slot.head = layer.name;
    return { ...v, from: layer.name };
  }

  private opaque(layer: KerasLayer, inputs: Value[], reason: string): Value {
    const why = `feeds ${layer.name} (${layer.className}): ${reason}`;
    for (const v of inputs) {
      const names = v.kind === 'group' ? [v.group] : v.kind === 'parts' ? v.parts.map((p) => p.group) : [];
      for (const n of names) {
        const slot = this.slot(n);
        if (!slot.visible.some((x) => x.reason === why)) slot.visible.push({ reason: why });
      }
    }
    this.notes.push(`${layer.name} (${layer.className}): ${reason}; the units feeding it stay fixed and its output counts as a network input`);
    return { kind: 'free', name: layer.name };
  }

  // ---------------------------------------------------------------- weights

  private weightName(layer: KerasLayer, role: string): string | undefined {
    return this.weights.get(layer.name)?.get(role);
  }

  /** A float weight of the layer, loaded once; quantized weights make the layer unsupported. */
  private weight(layer: KerasLayer, role: string, optional = false): Tensor | undefined {
    const name = this.weightName(layer, role);
    if (!name) {
      if (optional) return undefined;
      throw new Error(`layer ${layer.name} (${layer.className}) has no "${role}" weight in the file`);
    }
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`layer ${layer.name}: no tensor ${name}`);
    if (!isFloatDType(entry.dtype)) throw new Unsupported(`its ${role} is stored as ${entry.dtype} (quantized weights are left alone)`);
    let t = this.tensors.get(name);
    if (!t) {
      t = loadTensor(entry);
      this.tensors.set(name, t);
    }
    return t;
  }

  private requireWeight(layer: KerasLayer, role: string): Tensor {
    return this.weight(layer, role)!;
  }

  /** The same values under another shape (same element order), for the engine's axis maps. */
  private view(t: Tensor, shape: number[]): Tensor {
    const v: Tensor = { name: t.name, dtype: t.dtype, shape, data: t.data };
    this.tensors.set(t.name, v);
    return v;
  }

  // ---------------------------------------------------------------- weighted layers

  /** Sources of a weighted layer: groups with their ranges along the kernel's input axis. */
  private sources(layer: KerasLayer, v: Value, inChannels: number, dense: boolean): { group: string; start: number; length: number }[] {
    if (v.kind === 'free') return [{ group: this.materialize(v, inChannels).group, start: 0, length: inChannels }];
    if (v.kind === 'parts') {
      const total = v.parts.reduce((a, p) => a + p.channels, 0);
      if (total !== inChannels) throw new Error(`layer ${layer.name} expects ${inChannels} input channels; its input concatenates ${total}`);
      let at = 0;
      return v.parts.map((p) => ({ group: p.group, start: (at += p.channels) - p.channels, length: p.channels }));
    }
    const size = this.slot(v.group).group.size;
    if (v.flat && !dense) throw new Unsupported('it reads flattened values as channels');
    if (v.pad && dense) throw new Unsupported('it reads zero-padded values');
    const expected = v.flat ? product(v.shape) : size;
    if (v.flat ? (expected !== null ? expected !== inChannels : inChannels % size !== 0) : size !== inChannels) {
      throw new Error(`layer ${layer.name} expects ${inChannels} inputs; ${v.group} provides ${expected ?? `a multiple of ${size}`}`);
    }
    return [{ group: v.group, start: 0, length: inChannels }];
  }

  private weightedGroup(layer: KerasLayer, name: string, size: number, shape: Dim[], activation: Activation | undefined): Slot {
    const a = activation ?? identity();
    const group: UnitGroup = { name, size, role: 'hidden', activation: a, activationSource: `${layer.name} (${layer.className})` };
    const spatial = shape.slice(0, -1);
    if (spatial.length && known(spatial)) group.spatial = spatial;
    else if (spatial.length) this.caveats.add(`the spatial size after ${layer.name} is unknown`);
    const linear = a.kind === 'bilu' && a.name === 'identity';
    return this.addGroup(group, layer.name, linear ? LINEAR : ACTIVATED);
  }

  /** The bias, fetched before any group is made (a quantized one makes the layer unsupported). */
  private biasOf(layer: KerasLayer): Tensor | undefined {
    return this.weight(layer, 'bias', layer.config.use_bias === false);
  }

  private bias(layer: KerasLayer, group: string, b: Tensor | undefined): void {
    if (!b) return;
    if (b.data.length !== this.slot(group).group.size) throw new Error(`layer ${layer.name}: ${b.data.length} biases for ${this.slot(group).group.size} units`);
    this.connections.push({ tensor: b.name, kind: 'bias', to: group, target: { axis: 0 } });
  }

  private dense(layer: KerasLayer, v: Value): Value {
    const k = this.requireWeight(layer, 'kernel');
    if (k.shape.length !== 2) throw new Error(`layer ${layer.name}: a Dense kernel must be 2-D, it is [${k.shape.join(', ')}]`);
    const [fin, units] = k.shape;
    const b = this.biasOf(layer);
    const srcs = this.sources(layer, v, fin, true);
    // A Dense layer on [..., C] acts per position; on a flattened map it reads every position.
    const perPosition = v.kind !== 'free' && !(v.kind === 'group' && v.flat) ? v.shape.slice(0, -1) : [];
    const shape: Dim[] = [...perPosition, units];
    const slot = this.weightedGroup(layer, layer.name, units, shape, fieldActivation(layer.config.activation));
    for (const s of srcs) {
      this.connections.push({ tensor: k.name, kind: 'dense', from: s.group, to: layer.name, target: { axis: 1 }, source: { axis: 0, start: s.start, length: s.length } });
    }
    this.bias(layer, slot.group.name, b);
    return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
  }

  /** Spatial geometry of a convolution over `v` (pads include pending ZeroPadding). */
  private convGeometry(layer: KerasLayer, v: Value, nd: number, kernel: number[], transposed: boolean) {
    const shape = v.kind === 'free' ? v.shape ?? Array(nd + 1).fill(null) : v.shape;
    if (shape.length !== nd + 1) throw new Unsupported(`a ${nd}-d convolution over a tensor of shape [${shape.join(', ')}]`);
    const spatial = shape.slice(0, nd);
    const cfg = layer.config;
    const stride = tuple(cfg.strides, nd, 1);
    const dilation = tuple(cfg.dilation_rate, nd, 1);
    const padding = typeof cfg.padding === 'string' ? cfg.padding.toLowerCase() : 'valid';
    if (transposed && cfg.output_padding !== null && cfg.output_padding !== undefined) this.caveats.add(`${layer.name} has output_padding`);
    const out = spatial.map((n, i) => (transposed ? transposedOutput(n, kernel[i], stride[i], padding) : convOutput(n, kernel[i], stride[i], dilation[i], padding)));
    const extra = v.kind === 'group' ? v.pad : undefined;
    const pad = spatial.map((n, i) => padBefore(n, kernel[i], stride[i], dilation[i], padding));
    const padEnd = spatial.map((n, i) => padAfter(n, kernel[i], stride[i], dilation[i], padding));
    const geometry: Connection['geometry'] = { stride };
    if (dilation.some((d) => d !== 1)) geometry.dilation = dilation;
    if (transposed) {
      this.caveats.add(`${layer.name} is a transposed convolution, which the forward pass computes as a plain one`);
    } else if (pad.every((p) => p !== undefined) && padEnd.every((p) => p !== undefined)) {
      geometry.pad = pad.map((p, i) => p! + (extra?.before[i] ?? 0));
      geometry.padEnd = padEnd.map((p, i) => p! + (extra?.after[i] ?? 0));
    } else {
      this.caveats.add(`the padding of ${layer.name} depends on an unknown input size`);
    }
    return { out, geometry };
  }

  private convSources(layer: KerasLayer, v: Value, inChannels: number) {
    const srcs = this.sources(layer, v, inChannels, false);
    if (srcs.length > 1) this.caveats.add(`${layer.name} convolves a concatenation, which the forward pass does not compute`);
    return srcs;
  }

  private conv(layer: KerasLayer, v: Value, nd: number, transposed: boolean): Value {
    const k = this.requireWeight(layer, 'kernel');
    if (k.shape.length !== nd + 2) throw new Error(`layer ${layer.name}: a ${nd}-d kernel needs ${nd + 2} axes, it is [${k.shape.join(', ')}]`);
    const groups = typeof layer.config.groups === 'number' ? layer.config.groups : 1;
    // Keras kernels are [k…, in, out]; transposed ones [k…, out, in].
    const tAxis = transposed ? nd : nd + 1;
    const sAxis = transposed ? nd + 1 : nd;
    const outC = k.shape[tAxis];
    const inC = k.shape[sAxis] * groups;
    const b = this.biasOf(layer);
    const { out, geometry } = this.convGeometry(layer, v, nd, k.shape.slice(0, nd), transposed);
    const srcs = this.convSources(layer, v, inC);
    if (groups > 1 && srcs.length > 1) throw new Unsupported('a grouped convolution over a concatenation is not supported');
    const shape: Dim[] = [...out, outC];
    const slot = this.weightedGroup(layer, layer.name, outC, shape, fieldActivation(layer.config.activation));
    for (const s of srcs) {
      const c: Connection = { tensor: k.name, kind: 'conv', from: s.group, to: layer.name, target: { axis: tAxis }, source: { axis: sAxis }, geometry };
      if (srcs.length > 1) c.source = { axis: sAxis, start: s.start, length: s.length };
      if (groups > 1) c.groups = groups;
      this.connections.push(c);
    }
    this.bias(layer, slot.group.name, b);
    return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
  }

  /** A depthwise kernel [k…, C, m] as a grouped conv: output channel c·m + j reads channel c. */
  private depthwiseConnection(k: Tensor, nd: number, src: string, to: string, geometry: Connection['geometry']): number {
    const C = k.shape[nd];
    const mult = k.shape[nd + 1];
    const t = mult === 1 ? k : this.view(k, [...k.shape.slice(0, nd), C * mult, 1]);
    this.connections.push({ tensor: t.name, kind: 'conv', from: src, to, target: { axis: nd }, source: { axis: nd + 1 }, groups: C, geometry });
    return C * mult;
  }

  private depthwise(layer: KerasLayer, v: Value, nd: number): Value {
    const k = this.requireWeight(layer, 'depthwise_kernel');
    if (k.shape.length !== nd + 2) throw new Error(`layer ${layer.name}: a depthwise kernel needs ${nd + 2} axes, it is [${k.shape.join(', ')}]`);
    const b = this.biasOf(layer);
    const srcs = this.convSources(layer, v, k.shape[nd]);
    if (srcs.length > 1) throw new Unsupported('a depthwise convolution over a concatenation is not supported');
    const { out, geometry } = this.convGeometry(layer, v, nd, k.shape.slice(0, nd), false);
    const outC = k.shape[nd] * k.shape[nd + 1];
    const shape: Dim[] = [...out, outC];
    const slot = this.weightedGroup(layer, layer.name, outC, shape, fieldActivation(layer.config.activation));
    this.depthwiseConnection(k, nd, srcs[0].group, layer.name, geometry);
    this.bias(layer, slot.group.name, b);
    return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
  }

  /** Depthwise then pointwise: the depthwise outputs are hidden linear units of their own. */
  private separable(layer: KerasLayer, v: Value, nd: number): Value {
    const dk = this.requireWeight(layer, 'depthwise_kernel');
    const pk = this.requireWeight(layer, 'pointwise_kernel');
    if (dk.shape.length !== nd + 2 || pk.shape.length !== nd + 2) throw new Error(`layer ${layer.name}: separable kernels need ${nd + 2} axes`);
    const b = this.biasOf(layer);
    const srcs = this.convSources(layer, v, dk.shape[nd]);
    if (srcs.length > 1) throw new Unsupported('a separable convolution over a concatenation is not supported');
    const { out, geometry } = this.convGeometry(layer, v, nd, dk.shape.slice(0, nd), false);
    const mid = dk.shape[nd] * dk.shape[nd + 1];
    const midName = `${layer.name}/depthwise`;
    this.weightedGroup(layer, midName, mid, [...out, mid], identity());
    this.depthwiseConnection(dk, nd, srcs[0].group, midName, geometry);
    if (pk.shape[nd] !== mid) throw new Error(`layer ${layer.name}: the pointwise kernel reads ${pk.shape[nd]} channels, the depthwise step makes ${mid}`);
    const outC = pk.shape[nd + 1];
    const shape: Dim[] = [...out, outC];
    const slot = this.weightedGroup(layer, layer.name, outC, shape, fieldActivation(layer.config.activation));
    this.connections.push({ tensor: pk.name, kind: 'conv', from: midName, to: layer.name, target: { axis: nd + 1 }, source: { axis: nd } });
    this.bias(layer, slot.group.name, b);
    return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
  }

  // ---------------------------------------------------------------- per-channel layers

  private channelAxisOk(layer: KerasLayer, rank: number): boolean {
    const axis = Array.isArray(layer.config.axis) && layer.config.axis.length === 1 ? layer.config.axis[0] : layer.config.axis ?? -1;
    return axis === -1 || axis === rank;
  }

  private batchnorm(layer: KerasLayer, input: Value): Value {
    const mean = this.requireWeight(layer, 'moving_mean');
    const variance = this.requireWeight(layer, 'moving_variance');
    const gamma = this.weight(layer, 'gamma', true);
    const beta = this.weight(layer, 'beta', true);
    const v = this.asGroup(input, 'BatchNormalization');
    if (!this.channelAxisOk(layer, v.shape.length)) throw new Unsupported('it normalizes an axis other than the channels');
    if (v.flat && product(v.shape) !== this.slot(v.group).group.size) throw new Unsupported('it normalizes flattened feature maps');
    const slot = this.foldable(v, LINEAR) ?? this.passGroup(layer.name, v, layer.name);
    const size = slot.group.size;
    for (const t of [mean, variance, gamma, beta]) {
      if (t && t.data.length !== size) throw new Error(`layer ${layer.name}: ${t.name} has ${t.data.length} values for ${size} channels`);
    }
    const eps = typeof layer.config.epsilon === 'number' ? layer.config.epsilon : 1e-3;
    slot.group.batchnorm = { mean: mean.name, variance: variance.name, gamma: gamma?.name, beta: beta?.name, eps };
    // The running mean and β scale with the channel; only β is a weight the regularizer sees.
    if (beta) this.connections.push({ tensor: beta.name, kind: 'bias', to: slot.group.name, target: { axis: 0 } });
    this.connections.push({ tensor: mean.name, kind: 'bias', to: slot.group.name, target: { axis: 0 }, regularized: false });
    slot.stage = NORMALIZED;
    slot.head = layer.name;
    return { ...v, group: slot.group.name, from: layer.name };
  }

  /** The activation of an activation layer for `channels` channels starting at `offset`. */
  private layerActivation(layer: KerasLayer, channels: number, offset: number, total: number): Activation {
    const cfg = layer.config;
    if (layer.className === 'ReLU') return reluLayer(cfg);
    if (layer.className === 'LeakyReLU') return leakyLayer(cfg);
    if (layer.className === 'PReLU') {
      const alpha = this.requireWeight(layer, 'alpha');
      const a = preluLayer(tensorValues(alpha), alpha.shape, total);
      return a.kind === 'bilu' && Array.isArray(a.neg) ? { ...a, neg: a.neg.slice(offset, offset + channels) } : a;
    }
    return otherActivationLayer(layer.className, cfg) ?? fieldActivation(cfg.activation);
  }

  private setActivation(slot: Slot, a: Activation, layer: KerasLayer): void {
    slot.group.activation = a;
    slot.group.activationSource = `${layer.name} (${layer.className})`;
    slot.stage = ACTIVATED;
    slot.head = layer.name;
  }

  private activation(layer: KerasLayer, input: Value): Value {
    // Load PReLU slopes before any group is made: quantized ones make the layer unsupported.
    if (layer.className === 'PReLU') this.requireWeight(layer, 'alpha');
    if (input.kind === 'parts') {
      const total = input.parts.reduce((a, p) => a + p.channels, 0);
      let at = 0;
      const acts = input.parts.map((p) => this.layerActivation(layer, p.channels, (at += p.channels) - p.channels, total));
      const parts = input.parts.map((p, i) => {
        const a = acts[i];
        const src: Extract<Value, { kind: 'group' }> = { kind: 'group', group: p.group, from: '', shape: [...input.shape.slice(0, -1), p.channels], flat: false };
        const slot = this.passGroup(`${layer.name}/${p.group}`, src, layer.name);
        this.setActivation(slot, a, layer);
        return { group: slot.group.name, channels: p.channels };
      });
      return { kind: 'parts', parts, shape: input.shape };
    }
    const v = this.asGroup(input, layer.className);
    const size = this.slot(v.group).group.size;
    const a = this.layerActivation(layer, size, 0, size);
    const slot = this.foldable(v, NORMALIZED) ?? this.passGroup(layer.name, v, layer.name);
    this.setActivation(slot, a, layer);
    return { ...v, group: slot.group.name, from: layer.name };
  }

  private pool(layer: KerasLayer, input: Value, kind: 'max' | 'avg', nd: number, global: boolean): Value {
    const shape = input.shape;
    if (!shape || shape.length !== nd + 1 || (input.kind === 'group' && input.flat)) throw new Unsupported(`${nd}-d pooling of a tensor of shape [${(shape ?? []).join(', ')}]`);
    const spatial = shape.slice(0, nd);
    const cfg = layer.config;
    const kernel = global ? spatial : tuple(cfg.pool_size, nd, 2);
    const stride = global ? kernel : cfg.strides === null || cfg.strides === undefined ? (kernel as number[]) : tuple(cfg.strides, nd, 1);
    const padding = typeof cfg.padding === 'string' ? cfg.padding.toLowerCase() : 'valid';
    const out: Dim[] = global ? spatial.map(() => 1) : spatial.map((n, i) => poolOutput(n, (kernel as number[])[i], (stride as number[])[i], padding));
    if (!global && padding === 'same' && spatial.some((n, i) => (padBefore(n, (kernel as number[])[i], (stride as number[])[i], 1, 'same') ?? 1) > 0)) {
      this.caveats.add(`${layer.name} pads before its windows, which the forward pass does not`);
    }
    const keep = global && cfg.keepdims === true;
    const apply = (slot: Slot) => {
      if (known(spatial) && known(kernel) && known(stride)) {
        slot.group.pool = { kind, kernel, stride, inputSpatial: spatial };
        if (known(out)) slot.group.spatial = out;
      } else {
        delete slot.group.spatial;
        this.caveats.add(`the input size of ${layer.name} is unknown`);
      }
      slot.stage = POOLED;
      slot.head = layer.name;
    };
    const outShape = (c: Dim): Dim[] => (global && !keep ? [c] : [...out, c]);
    if (input.kind === 'parts') {
      const parts = input.parts.map((p) => {
        const src: Extract<Value, { kind: 'group' }> = { kind: 'group', group: p.group, from: '', shape: [...spatial, p.channels], flat: false };
        const slot = this.passGroup(`${layer.name}/${p.group}`, src, layer.name);
        apply(slot);
        return { group: slot.group.name, channels: p.channels };
      });
      return { kind: 'parts', parts, shape: outShape(channelsOf(input)) };
    }
    const v = this.asGroup(input, layer.className);
    const existing = this.foldable(v, ACTIVATED);
    const slot = existing && !existing.group.pool ? existing : this.passGroup(layer.name, v, layer.name);
    apply(slot);
    return { kind: 'group', group: slot.group.name, from: layer.name, shape: outShape(channelsOf(v)), flat: false };
  }

  private zeroPad(layer: KerasLayer, input: Value, nd: number): Value {
    const v = this.asGroup(input, 'ZeroPadding');
    if (v.shape.length !== nd + 1 || v.flat) throw new Unsupported(`${nd}-d padding of a tensor of shape [${v.shape.join(', ')}]`);
    const p = layer.config.padding;
    const pairs: [number, number][] = Array.from({ length: nd }, (_, i) => {
      if (typeof p === 'number') return [p, p];
      const e = Array.isArray(p) ? p[i] : undefined;
      if (typeof e === 'number') return [e, e];
      if (Array.isArray(e) && e.length === 2 && e.every((x) => typeof x === 'number')) return [e[0], e[1]];
      return [1, 1];
    });
    const shape = v.shape.map((d, i) => (i < nd && d !== null ? d + pairs[i][0] + pairs[i][1] : d));
    const pad = { before: pairs.map((q) => q[0]), after: pairs.map((q) => q[1]) };
    const aliased = this.alias(layer, v) as Extract<Value, { kind: 'group' }>;
    return { ...aliased, shape, pad };
  }

  private flatten(layer: KerasLayer, input: Value): Value {
    if (input.kind === 'free') return { kind: 'free', name: input.name, shape: input.shape ? [product(input.shape)] : undefined };
    if (input.kind === 'parts') {
      if (input.shape.length > 1) throw new Unsupported('flattening a concatenation of feature maps interleaves its parts');
      return input;
    }
    if (input.pad) throw new Unsupported('flattening zero-padded values is not supported');
    const v = this.alias(layer, input) as Extract<Value, { kind: 'group' }>;
    return input.shape.length <= 1 ? v : { ...v, shape: [product(input.shape)], flat: true };
  }

  private reshape(layer: KerasLayer, input: Value): Value {
    const target = Array.isArray(layer.config.target_shape) ? (layer.config.target_shape as unknown[]) : undefined;
    if (!target) throw new Unsupported('it has no target_shape');
    if (target.length === 1) return this.flatten(layer, input);
    const v = this.asGroup(input, 'Reshape');
    const C = this.slot(v.group).group.size;
    const dims: Dim[] = target.map((d) => (typeof d === 'number' && d >= 0 ? d : null));
    const total = product(v.shape);
    if (dims[dims.length - 1] !== C) throw new Unsupported('it moves values between channels');
    const free = dims.filter((d) => d === null).length;
    if (free === 1 && total !== null) {
      const rest = product(dims.filter((d) => d !== null));
      dims[dims.indexOf(null)] = rest ? total / rest : null;
    }
    if (total !== null && known(dims) && product(dims) !== total) throw new Error(`layer ${layer.name}: cannot reshape [${v.shape.join(', ')}] to [${dims.join(', ')}]`);
    const slot = this.passGroup(layer.name, v, layer.name);
    const spatial = dims.slice(0, -1);
    if (known(spatial) && spatial.length) slot.group.spatial = spatial;
    else delete slot.group.spatial;
    return { kind: 'group', group: layer.name, from: layer.name, shape: dims, flat: false };
  }

  private add(layer: KerasLayer, inputs: Value[]): Value {
    if (inputs.length < 2) throw new Error(`layer ${layer.name} (Add) reads ${inputs.length} tensor`);
    const vs = inputs.map((v) => this.asGroup(v, 'Add'));
    const size = this.slot(vs[0].group).group.size;
    for (const v of vs) {
      if (this.slot(v.group).group.size !== size || v.flat !== vs[0].flat || !sameDims(v.shape, vs[0].shape)) {
        throw new Error(`layer ${layer.name} (Add) adds tensors of different shapes ([${vs.map((x) => x.shape.join(', ')).join('] and [')}])`);
      }
    }
    const first = this.slot(vs[0].group).group;
    const group: UnitGroup = { name: layer.name, size, role: 'hidden', activation: identity(), activationSource: `${layer.name} (Add)` };
    if (first.spatial) group.spatial = first.spatial;
    this.addGroup(group, layer.name, LINEAR);
    for (const v of vs) this.connections.push({ kind: 'skip', from: v.group, to: layer.name, target: { axis: 0 } });
    return { kind: 'group', group: layer.name, from: layer.name, shape: vs[0].shape, flat: vs[0].flat };
  }

  private concat(layer: KerasLayer, inputs: Value[]): Value {
    const parts: { group: string; channels: number }[] = [];
    let spatial: Dim[] | undefined;
    for (const input of inputs) {
      const v = input.kind === 'parts' ? input : this.asGroup(input, 'Concatenate');
      if (!this.channelAxisOk(layer, v.shape.length)) throw new Unsupported('it concatenates along an axis other than the channels');
      if (v.kind === 'group' && v.flat && v.shape.length === 1 && product(v.shape) !== this.slot(v.group).group.size) {
        throw new Unsupported('it concatenates flattened feature maps');
      }
      const s = v.shape.slice(0, -1);
      if (spatial && !sameDims(spatial, s)) throw new Error(`layer ${layer.name} (Concatenate) joins maps of different sizes`);
      spatial ??= s;
      if (v.kind === 'parts') parts.push(...v.parts);
      else parts.push({ group: v.group, channels: this.slot(v.group).group.size });
    }
    const total = parts.reduce((a, p) => a + p.channels, 0);
    return { kind: 'parts', parts, shape: [...(spatial ?? []), total] };
  }

  // ---------------------------------------------------------------- outputs

  private markOutputs(outputs: TensorRef[]): void {
    for (const r of outputs) {
      const v = this.valueOf(r);
      const names = v.kind === 'group' ? [v.group] : v.kind === 'parts' ? v.parts.map((p) => p.group) : [];
      if (!names.length) this.notes.push(`output ${r.layer} comes from a layer the network does not model`);
      for (const n of names) {
        const g = this.slot(n).group;
        if (g.role === 'input') continue;
        g.role = 'output';
        if (g.activation && !forwardKnown(g.activation)) {
          this.notes.push(`output ${g.name}: its ${g.activation.kind === 'other' ? g.activation.name : 'activation'} is left out of forward passes (outputs are never rescaled, so it does not matter to balancing)`);
          delete g.activation;
        }
      }
    }
  }

  private caveatNote(): string[] {
    return this.caveats.size ? [`forward passes of this network are not exact: ${[...this.caveats].join('; ')}`] : [];
  }

  private network(): Network {
    for (const slot of this.slots.values()) if (slot.visible.length) slot.group.visible = slot.visible;
    return { name: this.cp.path, groups: this.groups, tensors: [...this.tensors.values()], connections: this.connections };
  }
}

/** The Network a Keras checkpoint's config describes, with notes on what was inferred. */
export function kerasToNetwork(cp: Checkpoint): BuiltNetwork {
  const s = kerasStructureOf(cp);
  try {
    return new KerasGraph(cp, s).build();
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(cp.path) ? msg : `${cp.path}: ${msg}`);
  }
}
