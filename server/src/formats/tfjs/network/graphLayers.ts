// The weighted ops of a graph model: MatMul (a dense layer) and 2-d convolutions, plain or
// depthwise. Each makes a group of units, one per output channel.
import type { Connection } from '../../../engine/network';
import { convOutput, padAfter, padBefore } from '../../keras/geometry';
import type { TfjsGraphNode } from '../read';
import { groupInput, newGroup, weight, type GraphContext, type GroupGValue } from './graphDraft';
import { attrBool, attrInts, attrString } from './ops';

export function matmul(ctx: GraphContext, n: TfjsGraphNode): GroupGValue {
  const d = ctx.draft;
  const x = groupInput(ctx, n, 0);
  if (attrBool(n.attr, 'transpose_a')) throw new Error(`node ${n.name}: MatMul with transpose_a is not supported`);
  const w = weight(ctx, n, 1);
  if (w.shape.length !== 2) throw new Error(`node ${n.name}: MatMul weight of shape [${w.shape.join(', ')}]`);
  const tb = attrBool(n.attr, 'transpose_b');
  const [inAxis, outAxis] = tb ? [1, 0] : [0, 1];
  const src = d.byName.get(x.group)!;
  if (x.shape.length !== 1) throw new Error(`node ${n.name}: MatMul over a ${x.shape.length}-d value (a Reshape is not supported)`);
  if (w.shape[inAxis] !== src.size) throw new Error(`node ${n.name}: MatMul weight [${w.shape.join(', ')}] over ${src.size} features`);
  const out = w.shape[outAxis];
  newGroup(d, n.name, out, [out]);
  d.connections.push({ tensor: w.name, kind: 'dense', from: x.group, to: n.name, target: { axis: outAxis }, source: { axis: inAxis } });
  return { kind: 'group', group: n.name, shape: [out], stage: 'linear', owner: n.name };
}

export function conv(ctx: GraphContext, n: TfjsGraphNode, depthwise: boolean): GroupGValue {
  const d = ctx.draft;
  const x = groupInput(ctx, n, 0);
  const k = weight(ctx, n, 1);
  const fmt = attrString(n.attr, 'data_format') ?? 'NHWC';
  if (fmt !== 'NHWC') throw new Error(`node ${n.name}: data_format ${fmt} is not supported (only NHWC)`);
  if (k.shape.length !== 4 || x.shape.length !== 3) throw new Error(`node ${n.name}: a 2-d convolution needs a [h, w, in, out] kernel and an [H, W, C] input`);
  const src = d.byName.get(x.group)!;
  if (k.shape[2] !== src.size) throw new Error(`node ${n.name}: kernel [${k.shape.join(', ')}] over ${src.size} channels`);
  const strides = attrInts(n.attr, 'strides') ?? [1, 1, 1, 1];
  const dil = attrInts(n.attr, 'dilations') ?? [1, 1, 1, 1];
  const padding = (attrString(n.attr, 'padding') ?? 'VALID').toLowerCase();
  if (padding !== 'same' && padding !== 'valid') throw new Error(`node ${n.name}: padding ${padding.toUpperCase()} is not supported`);
  const stride = [strides[1], strides[2]];
  const dilation = [dil[1], dil[2]];
  const kernel = [k.shape[0], k.shape[1]];
  const spatial = x.shape.slice(0, 2);
  const out = spatial.map((s, i) => convOutput(s, kernel[i], stride[i], dilation[i], padding));
  const geometry: Connection['geometry'] = { stride };
  if (dilation.some((x) => x !== 1)) geometry.dilation = dilation;
  if (padding === 'same') {
    geometry.pad = spatial.map((s, i) => padBefore(s, kernel[i], stride[i], dilation[i], padding) ?? 0);
    geometry.padEnd = spatial.map((s, i) => padAfter(s, kernel[i], stride[i], dilation[i], padding) ?? 0);
  }
  if (depthwise) {
    const C = k.shape[2];
    if (k.shape[3] !== 1) throw new Error(`node ${n.name}: depthwise channel multiplier ${k.shape[3]} is not supported (only 1)`);
    newGroup(d, n.name, C, [...out, C]);
    d.connections.push({ tensor: k.name, kind: 'conv', from: x.group, to: n.name, target: { axis: 2 }, source: { axis: 3 }, groups: C, geometry });
    return { kind: 'group', group: n.name, shape: [...out, C], stage: 'linear', owner: n.name };
  }
  const C = k.shape[3];
  newGroup(d, n.name, C, [...out, C]);
  d.connections.push({ tensor: k.name, kind: 'conv', from: x.group, to: n.name, target: { axis: 3 }, source: { axis: 2 }, geometry });
  return { kind: 'group', group: n.name, shape: [...out, C], stage: 'linear', owner: n.name };
}
