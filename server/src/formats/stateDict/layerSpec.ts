// A layer-by-layer description of a network over a checkpoint's named tensors: what a
// sidecar manifest states, or what naming conventions propose; and the Network it makes.
import { parseActivation } from '../networkJson';
import { isFloatDType, loadTensor, type Checkpoint, type TensorEntry } from '../core/checkpoint';
import type { Connection, Network, UnitGroup } from '../../engine/network';
import { fail } from '../../errors/fileError';
import type { Tensor } from '../../tensor/tensor';

export interface BatchNormSpec {
  weight?: string;
  bias?: string;
  mean: string;
  var: string;
  eps?: number;
}

export interface LayerSpec {
  name: string;
  kind: 'linear' | 'conv';
  weight: string;
  bias?: string;
  /** 'out-in': PyTorch [out, in, k…] (default); 'in-out': Keras [k…, in, out]. */
  layout?: 'out-in' | 'in-out';
  groups?: number;
  stride?: number[];
  padding?: number[];
  batchnorm?: BatchNormSpec;
  /** The activation after the layer (and its BatchNorm); absent when nothing states it. */
  activation?: string;
  activationSource?: string;
  /** Tensor of per-channel PReLU slopes (with activation "prelu"). */
  prelu?: string;
  /** The layer feeding this one: default the previous layer; "input" (or "input:NAME") for a network input. */
  input?: string;
  /** This layer's sum also adds that layer's output (a residual add): their units share a scale. */
  residualFrom?: string;
  /** The layer's outputs cannot be scaled, and why (e.g. they form a residual stream). */
  visibleReason?: string;
  /** The layer's place was guessed from names: its units stay visible until a manifest confirms it. */
  unconfirmed?: boolean;
  /** Pooling after the activation (conv layers). */
  pool?: { kind: 'max' | 'avg'; kernel: number[]; stride?: number[] };
}

export interface Topology {
  layers: LayerSpec[];
  /** Spatial size of the network input, for conv nets (forward passes and flatten checks). */
  inputSpatial?: number[];
  /** Where the description came from: a manifest path, or "naming conventions". */
  source: string;
  notes: string[];
}

export interface TopologyOptions {
  /** Activation for hidden layers whose activation nothing states (a user setting). */
  defaultActivation?: string;
}

function entryOf(cp: Checkpoint, key: string, layer: string): TensorEntry {
  const e = cp.tensors.find((t) => t.name === key);
  if (!e) throw new Error(`layer ${layer}: the checkpoint has no tensor "${key}"`);
  if (!isFloatDType(e.dtype)) throw new Error(`layer ${layer}: tensor "${key}" is ${e.dtype}, not a float type`);
  return e;
}

/** Output and input feature counts of a layer's weight. */
function featureCounts(spec: LayerSpec, shape: readonly number[]): { out: number; in: number } {
  const inOut = spec.layout === 'in-out';
  if (spec.kind === 'linear' && shape.length !== 2) throw new Error(`layer ${spec.name}: a linear weight must be 2-D, "${spec.weight}" is [${shape.join(', ')}]`);
  if (spec.kind === 'conv' && shape.length < 3) throw new Error(`layer ${spec.name}: a conv weight needs at least 3 axes, "${spec.weight}" is [${shape.join(', ')}]`);
  // A TensorFlow depthwise kernel [k…, C, 1] with groups = C: C units, each reading its channel.
  if (isTfDepthwise(spec, shape)) return { out: spec.groups!, in: spec.groups! };
  const out = inOut ? shape[shape.length - 1] : shape[0];
  const inn = (inOut ? shape[shape.length - 2] : shape[1]) * (spec.kind === 'conv' ? (spec.groups ?? 1) : 1);
  return { out, in: inn };
}

function isTfDepthwise(spec: LayerSpec, shape: readonly number[]): boolean {
  return spec.kind === 'conv' && spec.layout === 'in-out' && (spec.groups ?? 1) > 1 && shape[shape.length - 2] === spec.groups && shape[shape.length - 1] === 1;
}

export const UNCONFIRMED = 'layer order guessed from tensor names: confirm it in a manifest';

export function topologyToNetwork(cp: Checkpoint, topo: Topology, opts: TopologyOptions = {}): Network {
  if (topo.layers.length === 0) fail(topo.source, `no layers`);
  const tensors = new Map<string, Tensor>();
  const load = (key: string, layer: string): Tensor => {
    let t = tensors.get(key);
    if (!t) {
      t = loadTensor(entryOf(cp, key, layer));
      tensors.set(key, t);
    }
    return t;
  };
  const names = new Set<string>();
  for (const l of topo.layers) {
    if (names.has(l.name) || l.name === 'input') fail(topo.source, `layer name "${l.name}" is used twice or reserved`);
    names.add(l.name);
  }
  const consumed = new Set<string>();
  topo.layers.forEach((l, i) => {
    const src = l.input ?? (i === 0 ? 'input' : topo.layers[i - 1].name);
    consumed.add(src);
    if (l.residualFrom) consumed.add(l.residualFrom);
  });
  const groups: UnitGroup[] = [];
  const connections: Connection[] = [];
  const size = new Map<string, { units: number; perUnit: number }>();
  // Feature-map sizes, known when the input's spatial size is stated (needed by forward passes).
  const spatial = new Map<string, number[] | undefined>([['input', topo.inputSpatial]]);
  let inputs = 0;
  topo.layers.forEach((l, i) => {
    const w = load(l.weight, l.name);
    const { out, in: fin } = featureCounts(l, w.shape);
    const src = l.input ?? (i === 0 ? 'input' : topo.layers[i - 1].name);
    // "input" (or "input:NAME" for a network with several inputs) is a network input.
    if ((src === 'input' || src.startsWith('input:')) && !size.has(src)) {
      groups.splice(inputs++, 0, { name: src, size: fin, role: 'input', ...(l.kind === 'conv' && topo.inputSpatial ? { spatial: topo.inputSpatial } : {}) });
      size.set(src, { units: fin, perUnit: 1 });
      if (!spatial.has(src)) spatial.set(src, topo.inputSpatial);
    }
    const from = size.get(src);
    if (!from) fail(topo.source, `layer ${l.name} reads "${src}", which is not an earlier layer`);
    const convOut = l.kind === 'conv' ? convOutput(spatial.get(src), w.shape, l) : undefined;
    const pooled = convOut && l.pool ? poolOutput(convOut, l.pool) : convOut;
    spatial.set(l.name, pooled);
    const isLast = !consumed.has(l.name);
    const group: UnitGroup = { name: l.name, size: out, role: isLast ? 'output' : 'hidden' };
    if (pooled) group.spatial = pooled;
    if (l.pool && convOut) group.pool = { kind: l.pool.kind, kernel: l.pool.kernel, stride: l.pool.stride, inputSpatial: convOut };
    if (!isLast) {
      const act = l.activation ?? opts.defaultActivation;
      if (act !== undefined) {
        let a = parseActivation(act);
        if (a.kind === 'bilu' && a.name === 'prelu' && l.prelu) a = { ...a, neg: Array.from(load(l.prelu, l.name).data, Number) };
        group.activation = a;
        group.activationSource = l.activation !== undefined ? (l.activationSource ?? topo.source) : 'setting';
      }
      if (l.visibleReason) group.visible = [{ reason: l.visibleReason }];
      if (l.unconfirmed || topo.layers[topo.layers.findIndex((x) => x.name === l.name) + 1]?.unconfirmed) {
        group.visible = [...(group.visible ?? []), { reason: UNCONFIRMED }];
      }
    }
    groups.push(group);
    size.set(l.name, { units: out, perUnit: 1 });
    const inOut = l.layout === 'in-out';
    const rank = w.shape.length;
    const depthwise = isTfDepthwise(l, w.shape);
    const tAxis = depthwise ? rank - 2 : inOut ? rank - 1 : 0;
    const sAxis = depthwise ? rank - 1 : inOut ? rank - 2 : 1;
    if (l.kind === 'conv') {
      connections.push({ tensor: l.weight, kind: 'conv', from: src, to: l.name, target: { axis: tAxis }, source: { axis: sAxis }, groups: l.groups, geometry: { stride: l.stride, pad: l.padding } });
    } else {
      // A linear layer after a conv reads its flattened feature maps: each channel spans
      // fin / channels consecutive inputs (channel-major, PyTorch) or every channels-th (Keras).
      if (fin % from.units !== 0) fail(topo.source, `layer ${l.name} takes ${fin} inputs, which ${src} (${from.units} units) cannot provide`);
      const per = fin / from.units;
      connections.push({ tensor: l.weight, kind: 'dense', from: src, to: l.name, target: { axis: tAxis }, source: { axis: sAxis, inner: per > 1 && !inOut ? per : 1 } });
    }
    if (l.bias) {
      const b = load(l.bias, l.name);
      if (b.data.length !== out) throw new Error(`layer ${l.name}: bias "${l.bias}" has ${b.data.length} values for ${out} units`);
      connections.push({ tensor: l.bias, kind: 'bias', to: l.name, target: { axis: 0 } });
    }
    if (l.batchnorm) {
      const bn = l.batchnorm;
      for (const key of [bn.mean, bn.var, bn.weight, bn.bias]) if (key) load(key, l.name);
      group.batchnorm = { mean: bn.mean, variance: bn.var, gamma: bn.weight, beta: bn.bias, eps: bn.eps ?? 1e-5 };
      if (bn.bias) connections.push({ tensor: bn.bias, kind: 'bias', to: l.name, target: { axis: 0 } });
      connections.push({ tensor: bn.mean, kind: 'bias', to: l.name, target: { axis: 0 }, regularized: false });
    }
    if (l.residualFrom) {
      const r = size.get(l.residualFrom);
      if (!r || r.units !== out) fail(topo.source, `layer ${l.name} adds "${l.residualFrom}", which is not an earlier layer of ${out} units`);
      connections.push({ kind: 'skip', from: l.residualFrom, to: l.name, target: { axis: 0 } });
    }
  });
  return { name: cp.path, groups, tensors: [...tensors.values()], connections };
}

/** Output size of a conv over a map of the given size (PyTorch's formula, dilation 1). */
function convOutput(input: number[] | undefined, shape: readonly number[], l: LayerSpec): number[] | undefined {
  if (!input) return undefined;
  const kernel = l.layout === 'in-out' ? shape.slice(0, shape.length - 2) : shape.slice(2);
  if (kernel.length !== input.length) throw new Error(`layer ${l.name}: a ${kernel.length}-d kernel over a ${input.length}-d input`);
  return input.map((d, i) => Math.floor((d + 2 * (l.padding?.[i] ?? 0) - kernel[i]) / (l.stride?.[i] ?? 1)) + 1);
}

function poolOutput(input: number[], p: NonNullable<LayerSpec['pool']>): number[] {
  return input.map((d, i) => Math.floor((d - p.kernel[i]) / (p.stride?.[i] ?? p.kernel[i])) + 1);
}
