// Per-channel affine maps on values no group reaches (the γ, β of a LayerNorm or of a BatchNorm
// after something that cannot scale, or x·γ on an input): y_i = γ_i·v_i + β_i is a unit of its
// own whose incoming weights are γ_i and β_i, so it can be balanced against the layer reading y.
import type { ChannelState } from './passThrough';
import { attrInt, nodeLabel } from '../attrs';
import { isNumber } from '../dims';
import type { ConstView, GraphView } from '../graphView';
import type { NodeRecord } from '../proto';
import { newGroup } from './groups';
import { extendReachable } from './reach';
import { traceGroup } from './trace';
import type { GroupInfo, GroupTrace, Layers, PendingConnection } from './types';
import { weightView } from './weights';

export interface AffineInput {
  view: GraphView;
  layers: Layers;
  /** Names already given to groups. */
  names: ReadonlySet<string>;
  /** Values the layer groups may reach, and those they were followed into. */
  reachable: ReadonlySet<string>;
  traced: ReadonlySet<string>;
}

export interface AffineGroup {
  info: GroupInfo;
  /** Its scale (and bias): the incoming weights of its units. */
  weights: PendingConnection[];
  trace: GroupTrace;
}

/** What makes a node an affine group, before the group is named. */
interface AffineMap {
  size: number;
  scale: ConstView;
  scaleAxis: number;
  bias?: ConstView;
  biasAxis: number;
  state: ChannelState;
}

export function affineGroups(input: AffineInput): AffineGroup[] {
  const { view, layers } = input;
  const names = new Set(input.names);
  const traced = new Set(input.traced);
  let reachable = input.reachable;
  const made: AffineGroup[] = [];
  // In graph order, each followed at once: a later Mul that an earlier affine group's values
  // already pass through is part of that group's path, not a group of its own.
  for (const n of view.order) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    const m = affineOf(view, n, traced);
    if (!m) continue;
    const info: GroupInfo = { group: newGroup(`${nodeLabel(n)} (affine)`, m.size, 'hidden', names), origin: n };
    const weights: PendingConnection[] = [{ node: n, view: m.scale, conn: { kind: 'bias', to: info, target: { axis: m.scaleAxis }, label: 'scale' } }];
    if (m.bias) weights.push({ node: n, view: m.bias, conn: { kind: 'bias', to: info, target: { axis: m.biasAxis }, label: 'bias' } });
    const value = n.outputs[0];
    reachable = extendReachable(view, layers, reachable, [value]);
    const trace = traceGroup({ view, layers, reachable }, info, [{ value, state: m.state }]);
    for (const v of trace.traced) traced.add(v);
    made.push({ info, weights, trace });
  }
  return made;
}

function affineOf(view: GraphView, n: NodeRecord, traced: ReadonlySet<string>): AffineMap | undefined {
  const untraced = (v: string | undefined) => !!v && !traced.has(v) && !view.isConstant(v);
  const rankOf = (v: string) => view.dims.get(v)?.length;
  if (n.opType === 'Mul' && n.inputs.length === 2) {
    const k = weightView(view, n.inputs[1]) ? 1 : weightView(view, n.inputs[0]) ? 0 : -1;
    if (k < 0 || !untraced(n.inputs[1 - k])) return undefined;
    const c = weightView(view, n.inputs[k])!;
    const rank = rankOf(n.inputs[1 - k]);
    const varying = c.shape.map((d, i) => (d > 1 ? i : -1)).filter((i) => i >= 0);
    if (rank === undefined || varying.length !== 1 || c.shape.length > rank) return undefined;
    const axis = varying[0] + rank - c.shape.length;
    const d = view.dims.get(n.inputs[1 - k])![axis];
    if (!isNumber(d) || d.coef !== c.shape[varying[0]]) return undefined;
    return { size: d.coef, scale: c, scaleAxis: varying[0], biasAxis: 0, state: { axis, rank, start: 0, inner: 1 } };
  }
  // A LayerNorm's output never carries an earlier group's scale (it divides it out).
  if (n.opType === 'LayerNormalization') {
    const scale = weightView(view, n.inputs[1], 1);
    const bias = n.inputs[2] ? weightView(view, n.inputs[2], 1) : undefined;
    const rank = rankOf(n.inputs[0]);
    const axis = attrInt(n, 'axis', -1);
    if (!scale || (n.inputs[2] && !bias) || rank === undefined || (axis !== -1 && axis !== rank - 1)) return undefined;
    return { size: scale.shape[0], scale, scaleAxis: 0, bias, biasAxis: 0, state: { axis: rank - 1, rank, start: 0, inner: 1 } };
  }
  if ((n.opType === 'BatchNormalization' || n.opType === 'InstanceNormalization') && untraced(n.inputs[0])) {
    const scale = weightView(view, n.inputs[1], 1);
    const bias = weightView(view, n.inputs[2], 1);
    const rank = rankOf(n.inputs[0]);
    if (!scale || !bias || rank === undefined || rank < 2) return undefined;
    if (n.opType === 'BatchNormalization' && (attrInt(n, 'training_mode', 0) === 1 || ![n.inputs[3], n.inputs[4]].every((v) => v && view.isConstant(v)))) return undefined;
    return { size: scale.shape[0], scale, scaleAxis: 0, bias, biasAxis: 0, state: { axis: 1, rank, start: 0, inner: 1 } };
  }
  return undefined;
}
