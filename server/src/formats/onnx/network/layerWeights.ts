// A layer's own weights as view connections: its weight matrix or kernel from each covered part of
// its inputs, its biases, and for an RNN the recurrent weights and a constant initial state.
import type { Connection, ConvGeometry } from '../../../engine/network';
import { attr, attrFloat, attrInts, nodeLabel } from '../attrs';
import type { GraphView } from '../graphView';
import type { NodeRecord } from '../proto';
import type { Cover } from './inputs';
import { isConv } from './layers';
import type { Finding, GroupInfo, Layer, PendingConnection } from './types';
import { weightView } from './weights';

export interface LayerWeights {
  connections: PendingConnection[];
  findings: Finding[];
  notes: string[];
}

export function layerWeights(view: GraphView, layer: Layer, groups: readonly GroupInfo[], covered: readonly Cover[]): LayerWeights {
  const out: LayerWeights = { connections: [], findings: [], notes: [] };
  const n = layer.node;
  const G = layer.convGroups;
  const geometry = layer.kind === 'Conv' ? convGeometry(n) : undefined;
  groups.forEach((g, d) => {
    const select = layer.kind === 'RNN' ? [{ axis: 0, index: d }] : undefined;
    const kind: Connection['kind'] = isConv(layer) ? 'conv' : 'dense';
    for (const c of covered) {
      out.connections.push({
        node: n,
        view: layer.weight,
        conn: { kind, to: g, from: c.group, target: { axis: layer.targetAxis }, source: c.map, select, groups: G > 1 ? G : undefined, geometry },
      });
    }
    layerExtras(view, layer, g, d, out);
  });
  return out;
}

/** Biases, the recurrent weights and an RNN's initial state. */
function layerExtras(view: GraphView, layer: Layer, g: GroupInfo, d: number, out: LayerWeights): void {
  const n = layer.node;
  const fix = (reason: string) => out.findings.push({ group: g, reason });
  if (layer.kind === 'Gemm' || layer.kind === 'MatMul') {
    if (layer.kind === 'Gemm') {
      const alpha = attrFloat(n, 'alpha', 1);
      const beta = attrFloat(n, 'beta', 1);
      if (alpha !== 1 || beta !== 1) out.notes.push(`${nodeLabel(n)}: Gemm alpha=${alpha}, beta=${beta}; costs are measured on the stored tensors (the scaling stays exact)`);
      const c = n.inputs[2];
      if (c) biasOf(view, g, n, c, layer.dataInput === 0 ? 1 : 0, 2, 'C', out);
    }
    return;
  }
  if (isConv(layer)) {
    if (n.inputs[2]) biasOf(view, g, n, n.inputs[2], 0, 1, 'B', out);
    return;
  }
  // RNN: R [dirs, hidden, hidden] recurrent (h_{t−1} → h_t), B [dirs, 2·hidden] = Wb ++ Rb.
  const H = g.group.size;
  const r = weightView(view, n.inputs[2], 3)!;
  out.connections.push({ node: n, view: r, conn: { kind: 'dense', to: g, from: g, target: { axis: 1 }, source: { axis: 2 }, select: [{ axis: 0, index: d }], delay: 1 } });
  const b = n.inputs[3] ? weightView(view, n.inputs[3], 2) : undefined;
  if (n.inputs[3] && !b && !view.isZeroFill(n.inputs[3])) fix(`the bias of RNN '${nodeLabel(n)}' is computed at run time`);
  if (b) {
    out.connections.push({ node: n, view: b, conn: { kind: 'bias', to: g, target: { axis: 1, start: 0, length: H }, select: [{ axis: 0, index: d }], label: 'Wb' } });
    out.connections.push({ node: n, view: b, conn: { kind: 'bias', to: g, target: { axis: 1, start: H, length: H }, select: [{ axis: 0, index: d }], label: 'Rb' } });
  }
  if (attr(n, 'clip')) fix(`RNN '${nodeLabel(n)}' clips its cell input, which is not positively homogeneous`);
  const h0 = n.inputs[5];
  if (h0 && !view.isZeroFill(h0)) {
    const v = weightView(view, h0, 3);
    // A constant initial state is a value of the hidden units: it scales with them.
    if (v) out.connections.push({ node: n, view: v, conn: { kind: 'bias', to: g, target: { axis: 2 }, select: [{ axis: 0, index: d }], regularized: false, label: 'initial_h' } });
    else fix(`the initial state of RNN '${nodeLabel(n)}' comes from ${h0}, which does not scale with the units`);
  }
}

/** A layer's bias input, broadcast against its output: per unit along `axis` of a rank-`rank` output. */
function biasOf(view: GraphView, g: GroupInfo, n: NodeRecord, value: string, axis: number, rank: number, what: string, out: LayerWeights): void {
  const v = weightView(view, value);
  if (!v) {
    if (!view.isZeroFill(value)) out.findings.push({ group: g, reason: `the bias ${what} of '${nodeLabel(n)}' is computed at run time` });
    return;
  }
  const a = v.shape.length === 1 && rank !== 2 ? 0 : axis - (rank - v.shape.length);
  if (a < 0 || v.shape[a] === 1) {
    if (g.group.size === 1 || view.constantValues(value)?.every((x) => x === 0)) {
      if (g.group.size === 1 && v.shape.every((d) => d === 1)) out.connections.push({ node: n, view: v, conn: { kind: 'bias', to: g, target: { axis: Math.max(a, 0) } } });
      return;
    }
    out.findings.push({ group: g, reason: `the bias ${what} of '${nodeLabel(n)}' is one number shared by all units` });
    return;
  }
  out.connections.push({ node: n, view: v, conn: { kind: 'bias', to: g, target: { axis: a } } });
}

function convGeometry(n: NodeRecord): ConvGeometry | undefined {
  const stride = attrInts(n, 'strides');
  const pads = attrInts(n, 'pads');
  const dilation = attrInts(n, 'dilations');
  const g: ConvGeometry = {};
  if (stride && stride.some((x) => x !== 1)) g.stride = stride;
  if (dilation && dilation.some((x) => x !== 1)) g.dilation = dilation;
  if (pads && pads.some((x) => x !== 0)) {
    const half = pads.length / 2;
    g.pad = pads.slice(0, half);
    const end = pads.slice(half);
    if (end.some((x, i) => x !== g.pad![i])) g.padEnd = end;
  }
  return Object.keys(g).length ? g : undefined;
}
