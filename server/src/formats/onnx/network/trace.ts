// Following one group's values forward through the operators that pass a positive per-channel
// scale (passThrough.ts) to the layers that read them and to the graph's outputs. Bias-like
// constants met on the way (a MatMul's Add, BatchNorm's mean and β) must scale with the units;
// Adds of two computed values are recorded, to be tied afterwards (residual.ts).
import type { Activation } from '../../../engine/activation';
import type { AxisMap } from '../../../engine/network';
import { composeActivations, passThrough, stopReason, type ChannelState } from './passThrough';
import { attrInt, nodeLabel } from '../attrs';
import type { GraphView } from '../graphView';
import type { NodeRecord } from '../proto';
import { isConv } from './layers';
import type { GroupInfo, GroupTrace, LayerGroups, Layers } from './types';
import { weightView } from './weights';

export interface TraceContext {
  view: GraphView;
  layers: Layers;
  /** Values some group's units may reach: the side of a residual join that carries on is one. */
  reachable: ReadonlySet<string>;
}

export interface TraceStart {
  value: string;
  state: ChannelState;
}

/** One walk: the context, the group walked, its growing trace and the (value, state)s seen. */
interface Walk {
  ctx: TraceContext;
  g: GroupInfo;
  out: GroupTrace;
  seen: Set<string>;
}

/** Where the group's values go from `starts` (one walk: a value met twice is followed once). */
export function traceGroup(ctx: TraceContext, g: GroupInfo, starts: readonly TraceStart[], reasons: string[] = []): GroupTrace {
  const out: GroupTrace = { group: g, reasons: [...reasons], paths: [], reachesLayer: false, reachesOutput: false, joined: false, arrivals: [], merges: [], biases: [], traced: new Set() };
  const w: Walk = { ctx, g, out, seen: new Set() };
  for (const s of starts) follow(w, s.value, s.state, undefined, []);
  return out;
}

/** Traces of every layer group, from the layer's outputs. */
export function traceLayerGroups(ctx: TraceContext, layerGroups: LayerGroups): GroupTrace[] {
  const traces: GroupTrace[] = [];
  for (const [layer, groups] of layerGroups) {
    const n = layer.node;
    const out = ctx.view.dims.get(n.outputs[0]);
    for (const g of groups) {
      if (layer.kind === 'RNN') {
        // Y is [seq, dirs, batch, hidden] (layout 0) or [batch, seq, dirs, hidden]: units on axis 3 either way; Y_h on axis 2.
        const dirs = layer.weight.shape[0];
        if (dirs > 1) {
          const used = n.outputs.some((o) => o && (ctx.view.uses(o).length > 0 || ctx.view.outputs.has(o)));
          traces.push(traceGroup(ctx, g, [], used ? [`the outputs of bidirectional RNN '${nodeLabel(n)}' interleave directions, which the builder does not follow`] : []));
          continue;
        }
        const starts: TraceStart[] = [];
        if (n.outputs[0]) starts.push({ value: n.outputs[0], state: { axis: 3, rank: 4, start: 0, inner: 1 } });
        if (n.outputs[1]) starts.push({ value: n.outputs[1], state: { axis: 2, rank: 3, start: 0, inner: 1 } });
        traces.push(traceGroup(ctx, g, starts));
        continue;
      }
      const rank = out?.length ?? (layer.kind === 'Gemm' ? 2 : layer.kind === 'MatMul' ? undefined : layer.weight.shape.length);
      if (rank === undefined) {
        traces.push(traceGroup(ctx, g, [], [`the output of '${nodeLabel(n)}' has unknown rank`]));
        continue;
      }
      let axis: number;
      if (isConv(layer)) axis = 1;
      else if (layer.kind === 'Gemm') axis = layer.dataInput === 0 ? 1 : 0;
      else axis = layer.dataInput === 0 ? rank - 1 : rank - 2;
      traces.push(traceGroup(ctx, g, [{ value: n.outputs[0], state: { axis, rank, start: 0, inner: 1 } }]));
    }
  }
  return traces;
}

/** Elements per unit once known: from a parameter's extent along the unit axis. */
export function resolveInner(size: number, state: ChannelState, extent: number): ChannelState | undefined {
  if (state.inner > 0) return state;
  if (state.start !== 0 || extent % size !== 0) return undefined;
  return { ...state, inner: extent / size };
}

function fix(w: Walk, reason: string): void {
  if (!w.out.reasons.includes(reason)) w.out.reasons.push(reason);
}

function follow(w: Walk, value: string, state: ChannelState, act: Activation | undefined, actNodes: string[]): void {
  const key = `${value}|${state.axis}|${state.rank}|${state.start}|${state.inner}`;
  if (w.seen.has(key)) return;
  w.seen.add(key);
  w.out.traced.add(value);
  if (w.ctx.view.outputs.has(value)) {
    w.out.reachesOutput = true;
    w.out.paths.push({ activation: act, nodes: actNodes });
  }
  for (const use of w.ctx.view.uses(value)) consume(w, use.node, use.input, state, act, actNodes);
}

type StopHere = (reason: string) => void;

function consume(w: Walk, node: NodeRecord, input: number, state: ChannelState, act: Activation | undefined, actNodes: string[]): void {
  const stopHere: StopHere = (reason) => fix(w, `feeds ${node.opType} (node '${nodeLabel(node)}'): ${reason}`);
  const layer = w.ctx.layers.get(node);
  if (layer) {
    if (input !== layer.dataInput) return stopHere('is used as a weight of that layer');
    w.out.arrivals.push({ layer, state });
    w.out.reachesLayer = true;
    w.out.paths.push({ activation: act, nodes: actNodes });
    return;
  }
  if (node.opType === 'BatchNormalization') return batchNorm(w, node, input, state, act, actNodes, stopHere);
  if (node.opType === 'Add' || node.opType === 'Sub') return addOrSub(w, node, input, state, act, actNodes, stopHere);
  const p = passThrough({ view: w.ctx.view, node, input, state, units: w.g.group.size });
  if (!p) return stopHere(stopReason(node.opType));
  if (p.kind === 'stop') return stopHere(p.reason);
  let nextAct = act;
  let nextNodes = actNodes;
  if (p.kind === 'fixed') {
    fix(w, p.reason);
    nextAct = composeActivations(act, p.activation);
    nextNodes = [...actNodes, nodeLabel(node)];
  } else if (p.activation) {
    nextAct = composeActivations(act, p.activation);
    nextNodes = [...actNodes, nodeLabel(node)];
  }
  for (const o of p.outputs) if (node.outputs[o.output]) follow(w, node.outputs[o.output], o.state, nextAct, nextNodes);
}

function batchNorm(w: Walk, node: NodeRecord, input: number, state: ChannelState, act: Activation | undefined, actNodes: string[], stopHere: StopHere): void {
  const view = w.ctx.view;
  if (input !== 0) return stopHere('uses the units as normalization parameters');
  if (state.axis !== 1) return stopHere('normalizes along another axis');
  if (attrInt(node, 'training_mode', 0) === 1 || node.outputs.slice(1).some((o) => o && view.uses(o).length > 0)) return stopHere('runs in training mode');
  const [, , beta, mean] = node.inputs;
  const vb = weightView(view, beta, 1);
  const vm = weightView(view, mean, 1);
  const others = [node.inputs[1], node.inputs[4]].every((v) => v && view.isConstant(v));
  if (!vb || !vm || !others) return stopHere('has parameters computed at run time');
  const s = resolveInner(w.g.group.size, state, vb.shape[0]);
  if (!s) return stopHere('cannot be matched to the units');
  // y = γ(x − μ)/σ + β: with x scaled by λ, μ and β scale by λ too; γ and σ do not.
  const target: AxisMap = { axis: 0, start: s.start, length: w.g.group.size * s.inner, inner: s.inner };
  w.out.biases.push({ node, view: vb, conn: { kind: 'bias', to: w.g, target, label: `${nodeLabel(node)} β` } });
  w.out.biases.push({ node, view: vm, conn: { kind: 'bias', to: w.g, target, regularized: false, label: `${nodeLabel(node)} running mean` } });
  follow(w, node.outputs[0], s, act, actNodes);
}

function addOrSub(w: Walk, node: NodeRecord, input: number, state: ChannelState, act: Activation | undefined, actNodes: string[], stopHere: StopHere): void {
  const view = w.ctx.view;
  const size = w.g.group.size;
  if (node.inputs.length !== 2) return stopHere('has more than two inputs');
  const otherValue = node.inputs[1 - input];
  const cv = weightView(view, otherValue);
  if (cv) {
    const a = state.axis - (state.rank - cv.shape.length);
    const zero = () => view.constantValues(otherValue)?.every((v) => v === 0) ?? false;
    if (a < 0 || cv.shape[a] === 1) {
      if (zero()) return follow(w, node.outputs[0], state, act, actNodes);
      return stopHere('adds one constant to all units, which cannot scale with each unit');
    }
    const s = resolveInner(size, state, cv.shape[a]);
    if (!s || s.start + size * s.inner > cv.shape[a]) return stopHere('adds a constant that does not line up with the units');
    // A constant added to scaled values must scale with them: it is a bias of these units.
    w.out.biases.push({ node, view: cv, conn: { kind: 'bias', to: w.g, target: { axis: a, start: s.start, length: size * s.inner, inner: s.inner }, label: `${nodeLabel(node)} bias` } });
    return follow(w, node.outputs[0], s, act, actNodes);
  }
  if (otherValue && view.isConstant(otherValue)) {
    if (view.isZeroFill(otherValue)) return follow(w, node.outputs[0], state, act, actNodes);
    return stopHere('adds a constant the builder cannot map to the units');
  }
  // Two computed values: a residual join. One side carries on; the groups are tied afterwards.
  w.out.merges.push({ node, input, state });
  const survivor = node.inputs[0] === node.inputs[1] || w.ctx.reachable.has(node.inputs[0]) ? 0 : 1;
  if (input === survivor) follow(w, node.outputs[0], state, act, actNodes);
  else {
    w.out.joined = true;
    w.out.paths.push({ activation: act, nodes: actNodes, joinedAt: `residual ${node.opType} node '${nodeLabel(node)}'` });
  }
}
