// What feeds each part of a layer's contracted input axis: the followed groups that arrive there,
// and visible source groups for the parts none covers (graph inputs, or values the builder does not
// follow), so that every weight stays in some connection.
import { other } from '../../../engine/activation';
import type { AxisMap } from '../../../engine/network';
import type { ChannelState } from './passThrough';
import { nodeLabel } from '../attrs';
import { isNumber } from '../dims';
import type { GraphView } from '../graphView';
import { newGroup } from './groups';
import { contractedAxis, isConv } from './layers';
import { hasLayerUpstream } from './reach';
import { resolveInner } from './trace';
import type { Finding, GroupInfo, GroupTrace, Layer, Layers } from './types';

export interface Arrival {
  group: GroupInfo;
  state: ChannelState;
}

/** One part [start, end) of the contracted axis, the group it comes from and its weights' source axis. */
export interface Cover {
  start: number;
  end: number;
  group: GroupInfo;
  map: AxisMap;
}

/** The groups whose values each layer reads, in the order the traces met them. */
export function arrivalsByLayer(traces: readonly GroupTrace[]): Map<Layer, Arrival[]> {
  const out = new Map<Layer, Arrival[]>();
  for (const t of traces) {
    for (const a of t.arrivals) {
      const list = out.get(a.layer) ?? [];
      list.push({ group: t.group, state: a.state });
      out.set(a.layer, list);
    }
  }
  return out;
}

export interface CoverInput {
  view: GraphView;
  layers: Layers;
  layer: Layer;
  arrivals: readonly Arrival[];
  /** Source groups made for earlier layers, by value and range, and the names taken so far. */
  sources: ReadonlyMap<string, GroupInfo>;
  names: ReadonlySet<string>;
}

export interface Covers {
  covered: Cover[];
  /** Source groups made for this layer, by value and range (in the order made). */
  created: Map<string, GroupInfo>;
  findings: Finding[];
}

export function coverInputs(input: CoverInput): Covers {
  const { view, layers, layer, arrivals } = input;
  const n = layer.node;
  const dataValue = n.inputs[layer.dataInput];
  const rank = view.dims.get(dataValue)?.length ?? (layer.kind === 'Gemm' ? 2 : layer.kind === 'RNN' ? 3 : layer.weight.shape.length);
  const axis = contractedAxis(layer, rank);
  const K = layer.inputUnits;
  const G = layer.convGroups;
  const findings: Finding[] = [];
  const covered: Cover[] = [];
  for (const ar of arrivals) {
    const g = ar.group;
    const where = `reaches ${n.opType} (node '${nodeLabel(n)}')`;
    if (ar.state.axis !== axis) {
      findings.push({ group: g, reason: `${where} on an axis it does not contract` });
      continue;
    }
    let s: ChannelState | undefined = ar.state;
    if (s.inner === 0) s = arrivals.length === 1 ? resolveInner(g.group.size, s, K) : undefined;
    if (!s) {
      findings.push({ group: g, reason: `${where}, but its units cannot be matched to the layer's inputs` });
      continue;
    }
    const start = s.start;
    const end = start + g.group.size * s.inner;
    if (s.inner < 1 || start < 0 || end > K || covered.some((c) => c.start < end && start < c.end) || (G > 1 && (start !== 0 || end !== K || s.inner !== 1))) {
      findings.push({ group: g, reason: `${where}, but its units do not line up with the layer's inputs` });
      continue;
    }
    covered.push({ start, end, group: g, map: G > 1 ? { axis: layer.sourceAxis } : { axis: layer.sourceAxis, start, length: end - start, inner: s.inner } });
  }
  // Parts that no followed group covers come from visible source groups, so that every
  // weight stays in some connection (unscaled columns in a scaled row would change the function).
  covered.sort((x, y) => x.start - y.start);
  const gaps: [number, number][] = [];
  let at = 0;
  for (const c of covered) {
    if (c.start > at) gaps.push([at, c.start]);
    at = c.end;
  }
  if (at < K) gaps.push([at, K]);
  const names = new Set(input.names);
  const created = new Map<string, GroupInfo>();
  for (const [a, b] of gaps) {
    const whole = a === 0 && b === K;
    const key = `${dataValue}|${a}|${b - a}`;
    let g = input.sources.get(key) ?? created.get(key);
    if (!g) {
      const made = sourceGroup(view, layers, dataValue, a, b - a, whole, isConv(layer), names);
      g = made.info;
      created.set(key, g);
      if (made.reason) findings.push({ group: g, reason: made.reason });
    }
    covered.push({ start: a, end: b, group: g, map: G > 1 ? { axis: layer.sourceAxis } : whole ? { axis: layer.sourceAxis } : { axis: layer.sourceAxis, start: a, length: b - a } });
  }
  return { covered, created, findings };
}

/** A visible group standing for a value the builder does not follow (an input, or what a non-layer computes). */
function sourceGroup(view: GraphView, layers: Layers, value: string, start: number, length: number, whole: boolean, image: boolean, names: Set<string>): { info: GroupInfo; reason?: string } {
  const isInput = view.inputs.includes(value) || !hasLayerUpstream(view, layers, value);
  const name = whole ? value : `${value}[${start}:${start + length}]`;
  const group = newGroup(name, length, isInput ? 'input' : 'hidden', names);
  let reason: string | undefined;
  if (!isInput) {
    const p = view.producer.get(value);
    const op = p ? p.node.opType : 'unknown';
    group.activation = other(op);
    group.activationSource = p ? `ONNX node '${nodeLabel(p.node)}' (${op})` : 'unknown';
    reason = p ? `computed by ${op} (node '${nodeLabel(p.node)}'), which the builder does not follow` : 'not followed';
  }
  // Channels of an image-like value read by a convolution: N, C, then the spatial axes.
  const dims = view.dims.get(value);
  if (image && dims && dims.length > 2 && dims.slice(2).every(isNumber)) group.spatial = dims.slice(2).map((d) => d.coef);
  return { info: { group }, reason };
}
