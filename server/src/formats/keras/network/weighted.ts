// Weighted layers (Dense, Conv*, depthwise, separable): each makes a group of units, one per
// output channel, connected to the groups it reads through its kernel, plus its bias.
import { identity, type Activation } from '../../../engine/activation';
import type { Connection, UnitGroup } from '../../../engine/network';
import type { Tensor } from '../../../tensor/tensor';
import { fieldActivation } from '../activations';
import type { KerasLayer } from '../config';
import { convOutput, known, padAfter, padBefore, transposedOutput, tuple, type Dim } from '../geometry';
import { addGroup, materialize, sizeOf, type NetworkDraft, type TraceContext } from './draft';
import { ACTIVATED, LINEAR, product, Unsupported, type Slot, type Value } from './values';
import { layerWeight, requireWeight, reshapedView } from './weights';

interface Source {
  group: string;
  start: number;
  length: number;
}

/** Sources of a weighted layer: groups with their ranges along the kernel's input axis. */
function sources(d: NetworkDraft, layer: KerasLayer, v: Value, inChannels: number, dense: boolean): Source[] {
  if (v.kind === 'free') return [{ group: materialize(d, v, inChannels).group, start: 0, length: inChannels }];
  if (v.kind === 'parts') {
    const total = v.parts.reduce((a, p) => a + p.channels, 0);
    if (total !== inChannels) throw new Error(`layer ${layer.name} expects ${inChannels} input channels; its input concatenates ${total}`);
    let at = 0;
    return v.parts.map((p) => ({ group: p.group, start: (at += p.channels) - p.channels, length: p.channels }));
  }
  const size = sizeOf(d, v.group);
  if (v.flat && !dense) throw new Unsupported('it reads flattened values as channels');
  if (v.pad && dense) throw new Unsupported('it reads zero-padded values');
  const expected = v.flat ? product(v.shape) : size;
  if (v.flat ? (expected !== null ? expected !== inChannels : inChannels % size !== 0) : size !== inChannels) {
    throw new Error(`layer ${layer.name} expects ${inChannels} inputs; ${v.group} provides ${expected ?? `a multiple of ${size}`}`);
  }
  return [{ group: v.group, start: 0, length: inChannels }];
}

function weightedGroup(d: NetworkDraft, layer: KerasLayer, name: string, size: number, shape: Dim[], activation: Activation | undefined): Slot {
  const a = activation ?? identity();
  const group: UnitGroup = { name, size, role: 'hidden', activation: a, activationSource: `${layer.name} (${layer.className})` };
  const spatial = shape.slice(0, -1);
  if (spatial.length && known(spatial)) group.spatial = spatial;
  else if (spatial.length) d.caveats.add(`the spatial size after ${layer.name} is unknown`);
  const linear = a.kind === 'bilu' && a.name === 'identity';
  return addGroup(d, group, layer.name, linear ? LINEAR : ACTIVATED);
}

/** The bias, fetched before any group is made (a quantized one makes the layer unsupported). */
function biasOf(ctx: TraceContext, layer: KerasLayer): Tensor | undefined {
  return layerWeight(ctx.weights, ctx.draft.tensors, layer, 'bias', layer.config.use_bias === false);
}

function connectBias(d: NetworkDraft, layer: KerasLayer, group: string, b: Tensor | undefined): void {
  if (!b) return;
  if (b.data.length !== sizeOf(d, group)) throw new Error(`layer ${layer.name}: ${b.data.length} biases for ${sizeOf(d, group)} units`);
  d.connections.push({ tensor: b.name, kind: 'bias', to: group, target: { axis: 0 } });
}

export function dense(ctx: TraceContext, layer: KerasLayer, v: Value): Value {
  const d = ctx.draft;
  const k = requireWeight(ctx.weights, d.tensors, layer, 'kernel');
  if (k.shape.length !== 2) throw new Error(`layer ${layer.name}: a Dense kernel must be 2-D, it is [${k.shape.join(', ')}]`);
  const [fin, units] = k.shape;
  const b = biasOf(ctx, layer);
  const srcs = sources(d, layer, v, fin, true);
  // A Dense layer on [..., C] acts per position; on a flattened map it reads every position.
  const perPosition = v.kind !== 'free' && !(v.kind === 'group' && v.flat) ? v.shape.slice(0, -1) : [];
  const shape: Dim[] = [...perPosition, units];
  const slot = weightedGroup(d, layer, layer.name, units, shape, fieldActivation(layer.config.activation));
  for (const s of srcs) {
    d.connections.push({ tensor: k.name, kind: 'dense', from: s.group, to: layer.name, target: { axis: 1 }, source: { axis: 0, start: s.start, length: s.length } });
  }
  connectBias(d, layer, slot.group.name, b);
  return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
}

/** Spatial geometry of a convolution over `v` (pads include pending ZeroPadding). */
function convGeometry(d: NetworkDraft, layer: KerasLayer, v: Value, nd: number, kernel: number[], transposed: boolean) {
  const shape = v.kind === 'free' ? v.shape ?? Array(nd + 1).fill(null) : v.shape;
  if (shape.length !== nd + 1) throw new Unsupported(`a ${nd}-d convolution over a tensor of shape [${shape.join(', ')}]`);
  const spatial = shape.slice(0, nd);
  const cfg = layer.config;
  const stride = tuple(cfg.strides, nd, 1);
  const dilation = tuple(cfg.dilation_rate, nd, 1);
  const padding = typeof cfg.padding === 'string' ? cfg.padding.toLowerCase() : 'valid';
  if (transposed && cfg.output_padding !== null && cfg.output_padding !== undefined) d.caveats.add(`${layer.name} has output_padding`);
  const out = spatial.map((n, i) => (transposed ? transposedOutput(n, kernel[i], stride[i], padding) : convOutput(n, kernel[i], stride[i], dilation[i], padding)));
  const extra = v.kind === 'group' ? v.pad : undefined;
  const pad = spatial.map((n, i) => padBefore(n, kernel[i], stride[i], dilation[i], padding));
  const padEnd = spatial.map((n, i) => padAfter(n, kernel[i], stride[i], dilation[i], padding));
  const geometry: Connection['geometry'] = { stride };
  if (dilation.some((x) => x !== 1)) geometry.dilation = dilation;
  if (transposed) {
    d.caveats.add(`${layer.name} is a transposed convolution, which the forward pass computes as a plain one`);
  } else if (pad.every((p) => p !== undefined) && padEnd.every((p) => p !== undefined)) {
    geometry.pad = pad.map((p, i) => p! + (extra?.before[i] ?? 0));
    geometry.padEnd = padEnd.map((p, i) => p! + (extra?.after[i] ?? 0));
  } else {
    d.caveats.add(`the padding of ${layer.name} depends on an unknown input size`);
  }
  return { out, geometry };
}

function convSources(d: NetworkDraft, layer: KerasLayer, v: Value, inChannels: number): Source[] {
  const srcs = sources(d, layer, v, inChannels, false);
  if (srcs.length > 1) d.caveats.add(`${layer.name} convolves a concatenation, which the forward pass does not compute`);
  return srcs;
}

export function conv(ctx: TraceContext, layer: KerasLayer, v: Value, nd: number, transposed: boolean): Value {
  const d = ctx.draft;
  const k = requireWeight(ctx.weights, d.tensors, layer, 'kernel');
  if (k.shape.length !== nd + 2) throw new Error(`layer ${layer.name}: a ${nd}-d kernel needs ${nd + 2} axes, it is [${k.shape.join(', ')}]`);
  const groups = typeof layer.config.groups === 'number' ? layer.config.groups : 1;
  // Keras kernels are [k…, in, out]; transposed ones [k…, out, in].
  const tAxis = transposed ? nd : nd + 1;
  const sAxis = transposed ? nd + 1 : nd;
  const outC = k.shape[tAxis];
  const inC = k.shape[sAxis] * groups;
  const b = biasOf(ctx, layer);
  const { out, geometry } = convGeometry(d, layer, v, nd, k.shape.slice(0, nd), transposed);
  const srcs = convSources(d, layer, v, inC);
  if (groups > 1 && srcs.length > 1) throw new Unsupported('a grouped convolution over a concatenation is not supported');
  const shape: Dim[] = [...out, outC];
  const slot = weightedGroup(d, layer, layer.name, outC, shape, fieldActivation(layer.config.activation));
  for (const s of srcs) {
    const c: Connection = { tensor: k.name, kind: 'conv', from: s.group, to: layer.name, target: { axis: tAxis }, source: { axis: sAxis }, geometry };
    if (srcs.length > 1) c.source = { axis: sAxis, start: s.start, length: s.length };
    if (groups > 1) c.groups = groups;
    d.connections.push(c);
  }
  connectBias(d, layer, slot.group.name, b);
  return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
}

/** A depthwise kernel [k…, C, m] as a grouped conv: output channel c·m + j reads channel c. */
function depthwiseConnection(d: NetworkDraft, k: Tensor, nd: number, src: string, to: string, geometry: Connection['geometry']): number {
  const C = k.shape[nd];
  const mult = k.shape[nd + 1];
  const t = mult === 1 ? k : reshapedView(d.tensors, k, [...k.shape.slice(0, nd), C * mult, 1]);
  d.connections.push({ tensor: t.name, kind: 'conv', from: src, to, target: { axis: nd }, source: { axis: nd + 1 }, groups: C, geometry });
  return C * mult;
}

export function depthwise(ctx: TraceContext, layer: KerasLayer, v: Value, nd: number): Value {
  const d = ctx.draft;
  const k = requireWeight(ctx.weights, d.tensors, layer, 'depthwise_kernel');
  if (k.shape.length !== nd + 2) throw new Error(`layer ${layer.name}: a depthwise kernel needs ${nd + 2} axes, it is [${k.shape.join(', ')}]`);
  const b = biasOf(ctx, layer);
  const srcs = convSources(d, layer, v, k.shape[nd]);
  if (srcs.length > 1) throw new Unsupported('a depthwise convolution over a concatenation is not supported');
  const { out, geometry } = convGeometry(d, layer, v, nd, k.shape.slice(0, nd), false);
  const outC = k.shape[nd] * k.shape[nd + 1];
  const shape: Dim[] = [...out, outC];
  const slot = weightedGroup(d, layer, layer.name, outC, shape, fieldActivation(layer.config.activation));
  depthwiseConnection(d, k, nd, srcs[0].group, layer.name, geometry);
  connectBias(d, layer, slot.group.name, b);
  return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
}

/** Depthwise then pointwise: the depthwise outputs are hidden linear units of their own. */
export function separable(ctx: TraceContext, layer: KerasLayer, v: Value, nd: number): Value {
  const d = ctx.draft;
  const dk = requireWeight(ctx.weights, d.tensors, layer, 'depthwise_kernel');
  const pk = requireWeight(ctx.weights, d.tensors, layer, 'pointwise_kernel');
  if (dk.shape.length !== nd + 2 || pk.shape.length !== nd + 2) throw new Error(`layer ${layer.name}: separable kernels need ${nd + 2} axes`);
  const b = biasOf(ctx, layer);
  const srcs = convSources(d, layer, v, dk.shape[nd]);
  if (srcs.length > 1) throw new Unsupported('a separable convolution over a concatenation is not supported');
  const { out, geometry } = convGeometry(d, layer, v, nd, dk.shape.slice(0, nd), false);
  const mid = dk.shape[nd] * dk.shape[nd + 1];
  const midName = `${layer.name}/depthwise`;
  weightedGroup(d, layer, midName, mid, [...out, mid], identity());
  depthwiseConnection(d, dk, nd, srcs[0].group, midName, geometry);
  if (pk.shape[nd] !== mid) throw new Error(`layer ${layer.name}: the pointwise kernel reads ${pk.shape[nd]} channels, the depthwise step makes ${mid}`);
  const outC = pk.shape[nd + 1];
  const shape: Dim[] = [...out, outC];
  const slot = weightedGroup(d, layer, layer.name, outC, shape, fieldActivation(layer.config.activation));
  d.connections.push({ tensor: pk.name, kind: 'conv', from: midName, to: layer.name, target: { axis: nd + 1 }, source: { axis: nd } });
  connectBias(d, layer, slot.group.name, b);
  return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
}
