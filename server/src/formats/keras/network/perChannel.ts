// Layers that act on each channel alone and pass a positive scale through (BatchNormalization,
// activations, pooling). They fold into the group that produced their input while the engine's
// order allows (BN → activation → pool) and nothing else reads that value; otherwise they get a
// group of their own, joined to their input by a skip connection.
import type { Activation } from '../../../engine/activation';
import { tensorValues } from '../../../tensor/tensor';
import { fieldActivation, leakyLayer, otherActivationLayer, preluLayer, reluLayer } from '../activations';
import type { KerasLayer } from '../config';
import { known, padBefore, poolOutput, tuple, type Dim } from '../geometry';
import { asGroup, foldable, passGroup, sizeOf, type TraceContext } from './draft';
import { ACTIVATED, channelAxisOk, channelsOf, LINEAR, NORMALIZED, POOLED, product, Unsupported, type GroupValue, type Slot, type Value } from './values';
import { layerWeight, requireWeight } from './weights';

export function batchnorm(ctx: TraceContext, layer: KerasLayer, input: Value): Value {
  const d = ctx.draft;
  const mean = requireWeight(ctx.weights, d.tensors, layer, 'moving_mean');
  const variance = requireWeight(ctx.weights, d.tensors, layer, 'moving_variance');
  const gamma = layerWeight(ctx.weights, d.tensors, layer, 'gamma', true);
  const beta = layerWeight(ctx.weights, d.tensors, layer, 'beta', true);
  const v = asGroup(d, input, 'BatchNormalization');
  if (!channelAxisOk(layer, v.shape.length)) throw new Unsupported('it normalizes an axis other than the channels');
  if (v.flat && product(v.shape) !== sizeOf(d, v.group)) throw new Unsupported('it normalizes flattened feature maps');
  const slot = foldable(ctx, v, LINEAR) ?? passGroup(d, layer.name, v, layer.name);
  const size = slot.group.size;
  for (const t of [mean, variance, gamma, beta]) {
    if (t && t.data.length !== size) throw new Error(`layer ${layer.name}: ${t.name} has ${t.data.length} values for ${size} channels`);
  }
  const eps = typeof layer.config.epsilon === 'number' ? layer.config.epsilon : 1e-3;
  slot.group.batchnorm = { mean: mean.name, variance: variance.name, gamma: gamma?.name, beta: beta?.name, eps };
  // The running mean and β scale with the channel; only β is a weight the regularizer sees.
  if (beta) d.connections.push({ tensor: beta.name, kind: 'bias', to: slot.group.name, target: { axis: 0 } });
  d.connections.push({ tensor: mean.name, kind: 'bias', to: slot.group.name, target: { axis: 0 }, regularized: false });
  slot.stage = NORMALIZED;
  slot.head = layer.name;
  return { ...v, group: slot.group.name, from: layer.name };
}

/** The activation of an activation layer for `channels` channels starting at `offset`. */
function layerActivation(ctx: TraceContext, layer: KerasLayer, channels: number, offset: number, total: number): Activation {
  const cfg = layer.config;
  if (layer.className === 'ReLU') return reluLayer(cfg);
  if (layer.className === 'LeakyReLU') return leakyLayer(cfg);
  if (layer.className === 'PReLU') {
    const alpha = requireWeight(ctx.weights, ctx.draft.tensors, layer, 'alpha');
    const a = preluLayer(tensorValues(alpha), alpha.shape, total);
    return a.kind === 'bilu' && Array.isArray(a.neg) ? { ...a, neg: a.neg.slice(offset, offset + channels) } : a;
  }
  return otherActivationLayer(layer.className, cfg) ?? fieldActivation(cfg.activation);
}

function setActivation(slot: Slot, a: Activation, layer: KerasLayer): void {
  slot.group.activation = a;
  slot.group.activationSource = `${layer.name} (${layer.className})`;
  slot.stage = ACTIVATED;
  slot.head = layer.name;
}

export function activation(ctx: TraceContext, layer: KerasLayer, input: Value): Value {
  const d = ctx.draft;
  // Load PReLU slopes before any group is made: quantized ones make the layer unsupported.
  if (layer.className === 'PReLU') requireWeight(ctx.weights, d.tensors, layer, 'alpha');
  if (input.kind === 'parts') {
    const total = input.parts.reduce((a, p) => a + p.channels, 0);
    let at = 0;
    const acts = input.parts.map((p) => layerActivation(ctx, layer, p.channels, (at += p.channels) - p.channels, total));
    const parts = input.parts.map((p, i) => {
      const a = acts[i];
      const src: GroupValue = { kind: 'group', group: p.group, from: '', shape: [...input.shape.slice(0, -1), p.channels], flat: false };
      const slot = passGroup(d, `${layer.name}/${p.group}`, src, layer.name);
      setActivation(slot, a, layer);
      return { group: slot.group.name, channels: p.channels };
    });
    return { kind: 'parts', parts, shape: input.shape };
  }
  const v = asGroup(d, input, layer.className);
  const size = sizeOf(d, v.group);
  const a = layerActivation(ctx, layer, size, 0, size);
  const slot = foldable(ctx, v, NORMALIZED) ?? passGroup(d, layer.name, v, layer.name);
  setActivation(slot, a, layer);
  return { ...v, group: slot.group.name, from: layer.name };
}

export function pool(ctx: TraceContext, layer: KerasLayer, input: Value, kind: 'max' | 'avg', nd: number, global: boolean): Value {
  const d = ctx.draft;
  const shape = input.shape;
  if (!shape || shape.length !== nd + 1 || (input.kind === 'group' && input.flat)) throw new Unsupported(`${nd}-d pooling of a tensor of shape [${(shape ?? []).join(', ')}]`);
  const spatial = shape.slice(0, nd);
  const cfg = layer.config;
  const kernel = global ? spatial : tuple(cfg.pool_size, nd, 2);
  const stride = global ? kernel : cfg.strides === null || cfg.strides === undefined ? (kernel as number[]) : tuple(cfg.strides, nd, 1);
  const padding = typeof cfg.padding === 'string' ? cfg.padding.toLowerCase() : 'valid';
  const out: Dim[] = global ? spatial.map(() => 1) : spatial.map((n, i) => poolOutput(n, (kernel as number[])[i], (stride as number[])[i], padding));
  if (!global && padding === 'same' && spatial.some((n, i) => (padBefore(n, (kernel as number[])[i], (stride as number[])[i], 1, 'same') ?? 1) > 0)) {
    d.caveats.add(`${layer.name} pads before its windows, which the forward pass does not`);
  }
  const keep = global && cfg.keepdims === true;
  const apply = (slot: Slot) => {
    if (known(spatial) && known(kernel) && known(stride)) {
      slot.group.pool = { kind, kernel, stride, inputSpatial: spatial };
      if (known(out)) slot.group.spatial = out;
    } else {
      delete slot.group.spatial;
      d.caveats.add(`the input size of ${layer.name} is unknown`);
    }
    slot.stage = POOLED;
    slot.head = layer.name;
  };
  const outShape = (c: Dim): Dim[] => (global && !keep ? [c] : [...out, c]);
  if (input.kind === 'parts') {
    const parts = input.parts.map((p) => {
      const src: GroupValue = { kind: 'group', group: p.group, from: '', shape: [...spatial, p.channels], flat: false };
      const slot = passGroup(d, `${layer.name}/${p.group}`, src, layer.name);
      apply(slot);
      return { group: slot.group.name, channels: p.channels };
    });
    return { kind: 'parts', parts, shape: outShape(channelsOf(input)) };
  }
  const v = asGroup(d, input, layer.className);
  const existing = foldable(ctx, v, ACTIVATED);
  const slot = existing && !existing.group.pool ? existing : passGroup(d, layer.name, v, layer.name);
  apply(slot);
  return { kind: 'group', group: slot.group.name, from: layer.name, shape: outShape(channelsOf(v)), flat: false };
}
