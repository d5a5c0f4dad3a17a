// Graph ops that pass a positive per-channel scale through: pooling and global means, padding
// (zero or mirror), resizing, casts and identities, multiplication by a constant, channel
// concatenation, Maximum(x, 0). Scaling unit i by λ > 0 is exact only if the op commutes with
// it: f(λx) = λ f(x) per channel. Ops the engine's forward pass does not compute leave a caveat.
import { leakyRelu, other, prelu, relu, type Activation } from '../../../engine/activation';
import { tensorValues, type Tensor } from '../../../tensor/tensor';
import { known, padBefore, poolOutput, type Dim } from '../../keras/geometry';
import type { TfjsGraphNode } from '../read';
import { constValues, foldable, input, materialize, passGroup, Unsupported, type GraphContext, type GroupGValue, type GValue, type PartsGValue } from './graphDraft';
import { attrBool, attrInts, attrString, inputKey, type Json } from './ops';

/** Known dims of either side (a missing size on one side is taken from the other). */
export function mergeDims(a: Dim[] | undefined, b: Dim[] | undefined): Dim[] | undefined {
  if (!a) return b;
  if (!b || a.length !== b.length) return a;
  return a.map((x, i) => x ?? b[i]);
}

/** A value with padding still pending, read by something other than a convolution: a group of its own. */
export function settle(ctx: GraphContext, n: TfjsGraphNode, v: GValue): GValue {
  if (v.kind !== 'group' || !v.pad) return v;
  const p = v.pad;
  const shape = v.shape.map((s, i) => (i < p.before.length && s !== null ? s + p.before[i] + p.after[i] : s));
  ctx.draft.caveats.add(`forward passes do not compute the padding read by ${n.name}`);
  return passGroup(ctx.draft, n, `${n.name}/padded`, { ...v, pad: undefined }, shape);
}

/** Hands the node's readers on to its input (the node passes the value on unchanged). */
function handOn(ctx: GraphContext, n: TfjsGraphNode, i = 0): void {
  const k = inputKey(n.input[i])!;
  ctx.uses.set(k, (ctx.uses.get(k) ?? 0) - 1 + (ctx.uses.get(n.name) ?? 0));
}

/**
 * A per-channel op on its first input: `f` gets the group (and whether the op may fold into it);
 * over a concatenation each part gets a group of its own first.
 */
export function perChannel(ctx: GraphContext, n: TfjsGraphNode, f: (v: GroupGValue, fold: boolean) => GroupGValue): GValue {
  const v = settle(ctx, n, input(ctx, n, 0));
  if (v.kind === 'group') return f(v, foldable(ctx, v, inputKey(n.input[0])!));
  if (v.kind !== 'parts') throw new Unsupported('its input is not a computed value');
  let shape: Dim[] = v.shape;
  const parts = v.parts.map((p) => {
    const src: GroupGValue = { kind: 'group', group: p.group, shape: [...v.shape.slice(0, -1), p.channels], stage: 'pooled', owner: '' };
    const r = f(passGroup(ctx.draft, n, `${n.name}/${p.group}`, src, src.shape), true);
    shape = [...r.shape.slice(0, -1), v.shape[v.shape.length - 1]];
    return { group: r.group, channels: p.channels };
  });
  return { kind: 'parts', parts, shape };
}

export function preluOf(alpha: Tensor): Activation {
  const a = Array.from(tensorValues(alpha));
  return a.length === 1 ? leakyRelu(a[0]) : prelu(a);
}

/** Max or average pooling over windows: folds into the group while the engine's order allows. */
export function pool(ctx: GraphContext, n: TfjsGraphNode, v: GroupGValue, fold: boolean): GroupGValue {
  const d = ctx.draft;
  if ((attrString(n.attr, 'data_format') ?? 'NHWC') !== 'NHWC') throw new Unsupported('only NHWC pooling is modelled');
  if (v.shape.length !== 3) throw new Unsupported(`2-d pooling of a value of shape [${v.shape.join(', ')}]`);
  const ksize = attrInts(n.attr, 'ksize') ?? [1, 2, 2, 1];
  const strides = attrInts(n.attr, 'strides') ?? ksize;
  if (ksize[0] !== 1 || ksize[3] !== 1) throw new Unsupported('it pools across the batch or the channels');
  const padding = (attrString(n.attr, 'padding') ?? 'VALID').toLowerCase();
  const kernel = [ksize[1], ksize[2]];
  const stride = [strides[1], strides[2]];
  const spatial = v.shape.slice(0, 2);
  const out = spatial.map((s, i) => poolOutput(s, kernel[i], stride[i], padding));
  if (padding === 'same' && spatial.some((s, i) => (padBefore(s, kernel[i], stride[i], 1, 'same') ?? 1) > 0)) {
    d.caveats.add(`${n.name} pads before its windows, which the forward pass does not`);
  }
  return pooled(ctx, n, v, fold, n.op === 'MaxPool' ? 'max' : 'avg', kernel, stride, out, [...out, v.shape[2]]);
}

function pooled(ctx: GraphContext, n: TfjsGraphNode, v: GroupGValue, fold: boolean, kind: 'max' | 'avg', kernel: number[], stride: number[], out: Dim[], shape: Dim[]): GroupGValue {
  const d = ctx.draft;
  const existing = d.byName.get(v.group)!;
  const g = fold && v.stage !== 'pooled' && !existing.pool ? existing : d.byName.get(passGroup(d, n, v.owner === n.name ? `${n.name}/pool` : n.name, v, v.shape).group)!;
  const spatial = v.shape.slice(0, 2);
  if (known(spatial)) {
    g.pool = { kind, kernel, stride, inputSpatial: spatial };
    if (known(out)) g.spatial = out;
  } else {
    delete g.spatial;
    d.caveats.add(`the input size of ${n.name} is unknown`);
  }
  return { kind: 'group', group: g.name, shape, stage: 'pooled', owner: n.name };
}

/** Mean or Max over the spatial axes: global pooling. */
export function reduce(ctx: GraphContext, n: TfjsGraphNode): GValue {
  const axes = constValues(ctx, n, 1);
  if (!axes) throw new Unsupported('its axes are not constant');
  const keep = attrBool(n.attr, 'keep_dims') || attrBool(n.attr, 'keepDims');
  return perChannel(ctx, n, (v, fold) => {
    const r = v.shape.length + 1;
    const ax = [...new Set(axes.map((a) => (a < 0 ? a + r : a)))].sort();
    if (v.shape.length !== 3 || ax.join(',') !== '1,2') throw new Unsupported(`it reduces over axes [${axes.join(', ')}], not the spatial ones`);
    const spatial = v.shape.slice(0, 2);
    const C = v.shape[2];
    const shape: Dim[] = keep ? [1, 1, C] : [C];
    if (!known(spatial)) {
      ctx.draft.caveats.add(`the input size of ${n.name} is unknown`);
      return pooled(ctx, n, v, false, n.op === 'Max' ? 'max' : 'avg', [1, 1], [1, 1], [1, 1], shape);
    }
    return pooled(ctx, n, v, fold, n.op === 'Max' ? 'max' : 'avg', spatial, spatial, [1, 1], shape);
  });
}

/** Bilinear or nearest-neighbour resizing: interpolation commutes with a positive per-channel scale. */
export function resize(ctx: GraphContext, n: TfjsGraphNode, v: GroupGValue): GroupGValue {
  if (v.shape.length !== 3) throw new Unsupported(`resizing a value of shape [${v.shape.join(', ')}]`);
  const size = constValues(ctx, n, 1);
  const shape: Dim[] = [size?.[0] ?? null, size?.[1] ?? null, v.shape[2]];
  ctx.draft.caveats.add(`forward passes do not compute ${n.op} (node '${n.name}')`);
  if (v.owner === n.name) {
    const g = ctx.draft.byName.get(v.group)!;
    if (known(shape.slice(0, 2))) g.spatial = shape.slice(0, 2) as number[];
    return { ...v, shape };
  }
  return passGroup(ctx.draft, n, n.name, v, shape);
}

const FLOAT_TYPES = new Set(['DT_FLOAT', 'DT_HALF', 'DT_DOUBLE', 'DT_BFLOAT16']);

/** Identity-like ops, float casts, and reshapes that only add or drop axes of size 1. */
export function aliasOp(ctx: GraphContext, n: TfjsGraphNode): GValue {
  const op = n.op;
  let v = input(ctx, n, 0);
  if (v.kind === 'const' || v.kind === 'free') throw new Unsupported('its input is not a computed value');
  if (op === 'Cast') {
    const to = ((n.attr.DstT as Json | undefined)?.type as string | undefined) ?? 'DT_FLOAT';
    if (!FLOAT_TYPES.has(to)) throw new Unsupported(`it casts to ${to}, which does not carry a scale`);
  }
  let shape: Dim[] = v.shape;
  if (op === 'Squeeze' || op === 'Reshape') {
    const settled = settle(ctx, n, v);
    if (settled.kind !== 'group' && settled.kind !== 'parts') throw new Unsupported('its input is not a computed value');
    v = settled;
    const lead = v.shape.slice(0, -1);
    const C = v.shape[v.shape.length - 1];
    if (op === 'Squeeze') {
      const dims = attrInts(n.attr, 'squeeze_dims') ?? attrInts(n.attr, 'axis') ?? [];
      const r = v.shape.length + 1;
      const drop = new Set(dims.length ? dims.map((a) => (a < 0 ? a + r : a) - 1) : lead.map((s, i) => (s === 1 ? i : -1)).filter((i) => i >= 0));
      if ([...drop].some((i) => i < 0 || i >= lead.length || lead[i] !== 1)) throw new Unsupported('it drops an axis that is not of size 1');
      shape = [...lead.filter((_, i) => !drop.has(i)), C];
    } else {
      const target = constValues(ctx, n, 1);
      const t = target?.slice(1) ?? [];
      if (!target || !lead.every((s) => s === 1) || (t[t.length - 1] !== C && t[t.length - 1] !== -1) || t.slice(0, -1).some((s) => s !== 1)) {
        throw new Unsupported('it moves values between positions and channels');
      }
      shape = [...t.slice(0, -1), C];
    }
  }
  handOn(ctx, n);
  return { ...v, shape } as GValue;
}

/** Multiplication (or division) by a constant: it passes the scale on. */
export function multiply(ctx: GraphContext, n: TfjsGraphNode): GValue {
  const a = input(ctx, n, 0);
  const b = input(ctx, n, 1);
  if (a.kind !== 'const' && b.kind !== 'const') throw new Unsupported('it multiplies two computed values, which is not positively homogeneous of degree 1');
  if (n.op === 'RealDiv' && a.kind === 'const') throw new Unsupported('it divides by computed values');
  const i = a.kind === 'const' ? 1 : 0;
  const x = i === 0 ? a : b;
  if (x.kind === 'free' || x.kind === 'const') throw new Unsupported('its input is not a computed value');
  ctx.draft.caveats.add(`forward passes leave out the constant factor of ${n.name} (${n.op})`);
  handOn(ctx, n, i);
  return x;
}

/** Maximum(x, 0) is a ReLU; a clamp at c ≠ 0 is not positively homogeneous. */
export function minMax(ctx: GraphContext, n: TfjsGraphNode, act: (v: GroupGValue, a: Activation, fold: boolean) => GroupGValue): GValue {
  const c = constValues(ctx, n, 1);
  if (!c) throw new Unsupported('it compares two computed values');
  if (new Set(c).size !== 1) throw new Unsupported('it clamps each channel at its own constant, which is not positively homogeneous');
  const a = n.op === 'Maximum' && c[0] === 0 ? relu() : other(`${n.op}(x, ${c[0]})`);
  return perChannel(ctx, n, (v, fold) => act(v, a, fold));
}

/** Pad (zero), PadV2 (zero constant only) and MirrorPad: the padding waits for a convolution. */
export function padOp(ctx: GraphContext, n: TfjsGraphNode): GValue {
  const v = input(ctx, n, 0);
  if (v.kind !== 'group') throw new Unsupported(v.kind === 'parts' ? 'it pads a concatenation' : 'its input is not a computed value');
  const p = constValues(ctx, n, 1);
  if (!p || p.length !== 2 * (v.shape.length + 1)) throw new Unsupported('its paddings are not constant');
  if (p[0] || p[1] || p[p.length - 2] || p[p.length - 1]) throw new Unsupported('it pads the batch or the channels');
  if (n.op === 'PadV2') {
    const c = constValues(ctx, n, 2);
    if (!c || c.some((x) => x !== 0)) throw new Unsupported('it pads with a nonzero constant, which does not scale with the units');
  }
  const mirror = n.op === 'MirrorPad';
  const nd = v.shape.length - 1;
  const before = Array.from({ length: nd }, (_, i) => p[2 * (i + 1)] + (v.pad?.before[i] ?? 0));
  const after = Array.from({ length: nd }, (_, i) => p[2 * (i + 1) + 1] + (v.pad?.after[i] ?? 0));
  handOn(ctx, n);
  return { ...v, pad: { before, after, mirror: mirror || (v.pad?.mirror ?? false) } };
}

/** ConcatV2 along the channels: kept as parts that readers connect to one by one. */
export function concat(ctx: GraphContext, n: TfjsGraphNode): PartsGValue {
  const inputs = n.input.filter((x) => inputKey(x) !== undefined);
  const last = inputs.length - 1;
  const axis = constValues(ctx, n, last)?.[0];
  if (axis === undefined) throw new Unsupported('its axis is not constant');
  const parts: { group: string; channels: number }[] = [];
  let lead: Dim[] | undefined;
  for (let i = 0; i < last; i++) {
    let v = settle(ctx, n, input(ctx, n, i));
    if (v.kind === 'const') throw new Unsupported('it concatenates a constant');
    const rank = (v.shape?.length ?? 0) + 1;
    if ((axis < 0 ? axis + rank : axis) !== rank - 1) throw new Unsupported('it concatenates along an axis other than the channels');
    if (v.kind === 'free') v = materialize(ctx.draft, v);
    const l = v.shape.slice(0, -1);
    if (lead && (lead.length !== l.length || lead.some((s, j) => s !== null && l[j] !== null && s !== l[j]))) throw new Unsupported('it joins maps of different sizes');
    lead = mergeDims(lead, l);
    if (v.kind === 'parts') parts.push(...v.parts);
    else parts.push({ group: v.group, channels: ctx.draft.byName.get(v.group)!.size });
  }
  return { kind: 'parts', parts, shape: [...(lead ?? []), parts.reduce((a, p) => a + p.channels, 0)] };
}
