// The weighted ops of a graph model: MatMul (a dense layer) and 2-d convolutions, plain or
// depthwise. Each makes a group of units, one per output channel, connected to the groups it
// reads: one group, the parts of a concatenation, or a free value taken as a network input
// sized by the kernel.
import type { Connection } from '../../../engine/network';
import { convOutput, padAfter, padBefore, type Dim } from '../../keras/geometry';
import type { TfjsGraphNode } from '../read';
import { input, materialize, newGroup, Unsupported, weight, type GraphContext, type GroupGValue, type GValue, type Padding } from './graphDraft';
import { attrBool, attrInts, attrString } from './ops';

interface Source {
  group: string;
  start: number;
  length: number;
}

/** The groups a kernel with `inChannels` inputs reads, with their ranges along its input axis. */
function sources(ctx: GraphContext, n: TfjsGraphNode, v: GValue, inChannels: number): Source[] {
  const d = ctx.draft;
  if (v.kind === 'const') throw new Unsupported('it multiplies two constants');
  if (v.kind === 'free') return [{ group: materialize(d, v, inChannels).group, start: 0, length: inChannels }];
  if (v.kind === 'parts') {
    const total = v.parts.reduce((a, p) => a + p.channels, 0);
    if (total !== inChannels) throw new Error(`node ${n.name}: the kernel reads ${inChannels} channels; its input concatenates ${total}`);
    let at = 0;
    return v.parts.map((p) => ({ group: p.group, start: (at += p.channels) - p.channels, length: p.channels }));
  }
  const size = d.byName.get(v.group)!.size;
  if (size !== inChannels) throw new Error(`node ${n.name} (${n.op}): the kernel reads ${inChannels} channels; ${v.group} has ${size}`);
  return [{ group: v.group, start: 0, length: inChannels }];
}

export function matmul(ctx: GraphContext, n: TfjsGraphNode): GroupGValue {
  const d = ctx.draft;
  const x = input(ctx, n, 0);
  if (attrBool(n.attr, 'transpose_a')) throw new Unsupported('transpose_a is not modelled');
  const w = weight(ctx, n, 1);
  if (w.shape.length !== 2) throw new Unsupported(`its weight has shape [${w.shape.join(', ')}]`);
  const tb = attrBool(n.attr, 'transpose_b');
  const [inAxis, outAxis] = tb ? [1, 0] : [0, 1];
  if ((x.kind === 'group' || x.kind === 'parts') && x.shape.length > 1 && x.shape.slice(0, -1).some((s) => s !== 1)) {
    throw new Unsupported(`it multiplies a ${x.shape.length}-d value (a Reshape is not modelled)`);
  }
  if (x.kind === 'group' && x.pad) throw new Unsupported('it reads padded values');
  const srcs = sources(ctx, n, x.kind === 'free' ? { ...x, shape: [w.shape[inAxis]] } : x, w.shape[inAxis]);
  const out = w.shape[outAxis];
  newGroup(d, n.name, out, [out]);
  for (const s of srcs) {
    const c: Connection = { tensor: w.name, kind: 'dense', from: s.group, to: n.name, target: { axis: outAxis }, source: { axis: inAxis } };
    if (srcs.length > 1) c.source = { axis: inAxis, start: s.start, length: s.length };
    d.connections.push(c);
  }
  return { kind: 'group', group: n.name, shape: [out], stage: 'linear', owner: n.name };
}

export function conv(ctx: GraphContext, n: TfjsGraphNode, depthwise: boolean): GroupGValue {
  const d = ctx.draft;
  const x = input(ctx, n, 0);
  const k = weight(ctx, n, 1);
  const fmt = attrString(n.attr, 'data_format') ?? 'NHWC';
  if (fmt !== 'NHWC') throw new Unsupported(`data_format ${fmt} is not modelled (only NHWC)`);
  if (k.shape.length !== 4) throw new Unsupported(`a 2-d convolution with a kernel of shape [${k.shape.join(', ')}]`);
  if (depthwise && k.shape[3] !== 1) throw new Unsupported(`a depthwise channel multiplier of ${k.shape[3]} is not modelled (only 1)`);
  const xShape: Dim[] = x.kind === 'const' ? [] : x.kind === 'free' ? x.shape ?? [null, null, k.shape[2]] : x.shape;
  if (xShape.length !== 3) throw new Unsupported(`a 2-d convolution over a value of shape [${xShape.join(', ')}]`);
  const strides = attrInts(n.attr, 'strides') ?? [1, 1, 1, 1];
  const dil = attrInts(n.attr, 'dilations') ?? [1, 1, 1, 1];
  const padding = (attrString(n.attr, 'padding') ?? 'VALID').toLowerCase();
  if (padding !== 'same' && padding !== 'valid') throw new Unsupported(`padding ${padding.toUpperCase()} is not modelled`);
  const stride = [strides[1], strides[2]];
  const dilation = [dil[1], dil[2]];
  const kernel = [k.shape[0], k.shape[1]];
  const spatial = xShape.slice(0, 2);
  const out = spatial.map((s, i) => convOutput(s, kernel[i], stride[i], dilation[i], padding));
  const geometry: Connection['geometry'] = { stride };
  if (dilation.some((v) => v !== 1)) geometry.dilation = dilation;
  const extra: Padding | undefined = x.kind === 'group' ? x.pad : undefined;
  if (extra?.mirror) d.caveats.add(`forward passes pad the input of ${n.name} with zeros where MirrorPad mirrors it`);
  const pad = spatial.map((s, i) => padBefore(s, kernel[i], stride[i], dilation[i], padding));
  const padEnd = spatial.map((s, i) => padAfter(s, kernel[i], stride[i], dilation[i], padding));
  if (pad.every((p) => p !== undefined) && padEnd.every((p) => p !== undefined)) {
    if (padding === 'same' || extra) {
      geometry.pad = pad.map((p, i) => p! + (extra?.before[i] ?? 0));
      geometry.padEnd = padEnd.map((p, i) => p! + (extra?.after[i] ?? 0));
    }
  } else d.caveats.add(`the padding of ${n.name} depends on an unknown input size`);
  const inC = k.shape[2];
  const srcs = sources(ctx, n, x.kind === 'free' ? { ...x, shape: [...spatial, inC] } : x, inC);
  if (depthwise) {
    if (srcs.length > 1) throw new Unsupported('a depthwise convolution over a concatenation is not modelled');
    newGroup(d, n.name, inC, [...out, inC]);
    d.connections.push({ tensor: k.name, kind: 'conv', from: srcs[0].group, to: n.name, target: { axis: 2 }, source: { axis: 3 }, groups: inC, geometry });
    return { kind: 'group', group: n.name, shape: [...out, inC], stage: 'linear', owner: n.name };
  }
  const C = k.shape[3];
  newGroup(d, n.name, C, [...out, C]);
  if (srcs.length > 1) d.caveats.add(`${n.name} convolves a concatenation, which the forward pass does not compute`);
  for (const s of srcs) {
    const c: Connection = { tensor: k.name, kind: 'conv', from: s.group, to: n.name, target: { axis: 3 }, source: { axis: 2 }, geometry };
    if (srcs.length > 1) c.source = { axis: 2, start: s.start, length: s.length };
    d.connections.push(c);
  }
  return { kind: 'group', group: n.name, shape: [...out, C], stage: 'linear', owner: n.name };
}
