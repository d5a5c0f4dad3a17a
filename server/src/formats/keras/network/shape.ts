// Layers that move values without changing them (ZeroPadding, Flatten, Reshape, aliases) and
// those that join values (Add, Concatenate). A residual Add is a group with several skips, which
// tie its inputs' scales; a Concatenate is kept as parts that its readers connect to one by one.
import { identity } from '../../../engine/activation';
import type { UnitGroup } from '../../../engine/network';
import type { KerasLayer } from '../config';
import { known, tuple, type Dim } from '../geometry';
import { addGroup, alias, asGroup, materialize, passGroup, sizeOf, slotOf, type TraceContext } from './draft';
import { channelAxisOk, channelsOf, LINEAR, product, sameDims, Unsupported, type GroupValue, type Value } from './values';

export function zeroPad(ctx: TraceContext, layer: KerasLayer, input: Value, nd: number): Value {
  const v = asGroup(ctx.draft, input, 'ZeroPadding');
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
  // The padding waits on the value until a convolution folds it into its own.
  const pad = { before: pairs.map((q) => q[0]), after: pairs.map((q) => q[1]) };
  const aliased = alias(ctx, layer, v) as GroupValue;
  return { ...aliased, shape, pad };
}

/** UpSampling (nearest or bilinear): interpolation commutes with a positive per-channel scale. */
export function upsample(ctx: TraceContext, layer: KerasLayer, input: Value, nd: number): Value {
  const d = ctx.draft;
  const v = asGroup(d, input, layer.className);
  if (v.shape.length !== nd + 1 || v.flat) throw new Unsupported(`${nd}-d upsampling of a tensor of shape [${v.shape.join(', ')}]`);
  const size = tuple(layer.config.size, nd, 2);
  const shape: Dim[] = v.shape.map((s, i) => (i < nd && s !== null ? s * size[i] : s));
  const slot = passGroup(d, layer.name, v, layer.name);
  const spatial = shape.slice(0, -1);
  if (known(spatial)) slot.group.spatial = spatial;
  else delete slot.group.spatial;
  d.caveats.add(`forward passes do not compute ${layer.name} (${layer.className})`);
  return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
}

export function flatten(ctx: TraceContext, layer: KerasLayer, input: Value): Value {
  if (input.kind === 'free') return { kind: 'free', name: input.name, shape: input.shape ? [product(input.shape)] : undefined };
  if (input.kind === 'parts') {
    // Maps of one position (after global pooling with keepdims) flatten without interleaving.
    if (input.shape.length > 1 && input.shape.slice(0, -1).every((s) => s === 1)) return { ...input, shape: [input.shape[input.shape.length - 1]] };
    if (input.shape.length > 1) throw new Unsupported('flattening a concatenation of feature maps interleaves its parts');
    return input;
  }
  if (input.pad) throw new Unsupported('flattening zero-padded values is not supported');
  const v = alias(ctx, layer, input) as GroupValue;
  return input.shape.length <= 1 ? v : { ...v, shape: [product(input.shape)], flat: true };
}

export function reshape(ctx: TraceContext, layer: KerasLayer, input: Value): Value {
  const d = ctx.draft;
  const target = Array.isArray(layer.config.target_shape) ? (layer.config.target_shape as unknown[]) : undefined;
  if (!target) throw new Unsupported('it has no target_shape');
  if (target.length === 1) return flatten(ctx, layer, input);
  const v = asGroup(d, input, 'Reshape');
  const C = sizeOf(d, v.group);
  const dims: Dim[] = target.map((x) => (typeof x === 'number' && x >= 0 ? x : null));
  const total = product(v.shape);
  if (dims[dims.length - 1] !== C) throw new Unsupported('it moves values between channels');
  const free = dims.filter((x) => x === null).length;
  if (free === 1 && total !== null) {
    const rest = product(dims.filter((x) => x !== null));
    dims[dims.indexOf(null)] = rest ? total / rest : null;
  }
  if (total !== null && known(dims) && product(dims) !== total) throw new Error(`layer ${layer.name}: cannot reshape [${v.shape.join(', ')}] to [${dims.join(', ')}]`);
  const slot = passGroup(d, layer.name, v, layer.name);
  const spatial = dims.slice(0, -1);
  if (known(spatial) && spatial.length) slot.group.spatial = spatial;
  else delete slot.group.spatial;
  return { kind: 'group', group: layer.name, from: layer.name, shape: dims, flat: false };
}

export function add(ctx: TraceContext, layer: KerasLayer, inputs: Value[]): Value {
  const d = ctx.draft;
  if (inputs.length < 2) throw new Error(`layer ${layer.name} (Add) reads ${inputs.length} tensor`);
  // A side of unknown size takes the size of the sides that know theirs.
  const known0 = inputs.find((v) => v.kind === 'group') as GroupValue | undefined;
  const vs = inputs.map((v) => (v.kind === 'free' && known0 && channelsOf(v) === null ? materialize(d, { ...v, shape: known0.shape }, sizeOf(d, known0.group)) : asGroup(d, v, 'Add')));
  const size = sizeOf(d, vs[0].group);
  for (const v of vs) {
    if (sizeOf(d, v.group) !== size || v.flat !== vs[0].flat || !sameDims(v.shape, vs[0].shape)) {
      throw new Error(`layer ${layer.name} (Add) adds tensors of different shapes ([${vs.map((x) => x.shape.join(', ')).join('] and [')}])`);
    }
  }
  const first = slotOf(d, vs[0].group).group;
  const group: UnitGroup = { name: layer.name, size, role: 'hidden', activation: identity(), activationSource: `${layer.name} (Add)` };
  if (first.spatial) group.spatial = first.spatial;
  addGroup(d, group, layer.name, LINEAR);
  for (const v of vs) d.connections.push({ kind: 'skip', from: v.group, to: layer.name, target: { axis: 0 } });
  return { kind: 'group', group: layer.name, from: layer.name, shape: vs[0].shape, flat: vs[0].flat };
}

export function concat(ctx: TraceContext, layer: KerasLayer, inputs: Value[]): Value {
  const d = ctx.draft;
  const parts: { group: string; channels: number }[] = [];
  let spatial: Dim[] | undefined;
  for (const input of inputs) {
    const v = input.kind === 'parts' ? input : asGroup(d, input, 'Concatenate');
    if (!channelAxisOk(layer, v.shape.length)) throw new Unsupported('it concatenates along an axis other than the channels');
    if (v.kind === 'group' && v.flat && v.shape.length === 1 && product(v.shape) !== sizeOf(d, v.group)) {
      throw new Unsupported('it concatenates flattened feature maps');
    }
    const s = v.shape.slice(0, -1);
    if (spatial && !sameDims(spatial, s)) throw new Error(`layer ${layer.name} (Concatenate) joins maps of different sizes`);
    spatial ??= s;
    if (v.kind === 'parts') parts.push(...v.parts);
    else parts.push({ group: v.group, channels: sizeOf(d, v.group) });
  }
  const total = parts.reduce((a, p) => a + p.channels, 0);
  return { kind: 'parts', parts, shape: [...(spatial ?? []), total] };
}
