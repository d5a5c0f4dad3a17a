// From an ONNX graph to the network the engine balances. Layers (Gemm, MatMul, Conv, ConvTranspose,
// RNN with constant weights) own one group of units each (per direction for RNN). Each group's
// values are followed forward through the operators that pass a positive per-channel scale
// (passThrough.ts) to the layers that read them, which gives the outgoing connections; bias-like
// constants met on the way (a MatMul's Add, BatchNorm's mean and β) become bias connections;
// residual Adds tie groups. Whatever cannot be followed keeps its units visible, with the reason.
import { identity, other, relu, leakyRelu, type Activation } from '../engine/activation';
import type { AxisMap, Connection, ConvGeometry, Network, Tie, UnitGroup } from '../engine/network';
import { isFloatDType, loadTensor, type Checkpoint, type TensorEntry } from '../formats/core/checkpoint';
import { attr, attrFloat, attrInt, attrInts, attrString, nodeLabel } from '../formats/onnx/attrs';
import { isNumber } from '../formats/onnx/dims';
import { GraphView, type ConstView } from '../formats/onnx/graphView';
import type { NodeRecord } from '../formats/onnx/proto';
import { onnxStructure } from '../formats/onnx/reader';
import type { Tensor } from '../tensor/tensor';
import { composeActivations, passThrough, stopReason, type ChannelState } from './passThrough';
import { asFileError } from '../errors/fileError';

export interface OnnxNetwork {
  network: Network;
  notes: string[];
}

type LayerKind = 'Gemm' | 'MatMul' | 'Conv' | 'ConvTranspose' | 'RNN';

interface Layer {
  node: NodeRecord;
  kind: LayerKind;
  dataInput: number;
  weight: ConstView;
  /** Effective weight axes: the one indexing this layer's units and the one its inputs contract with. */
  targetAxis: number;
  sourceAxis: number;
  /** Units the contracted axis of the data holds (for a grouped conv: all input channels). */
  inputUnits: number;
  convGroups: number;
  groups: GroupInfo[];
}

interface PathEnd {
  activation?: Activation;
  /** The activation nodes met on the way, for activationSource. */
  nodes: string[];
  /** The residual Add/Sub where the path joined another group's values. */
  joinedAt?: string;
}

interface GroupInfo {
  group: UnitGroup;
  layer?: Layer;
  /** The node whose output the group's units are: its layer, or the Mul/normalization of an affine group. */
  origin?: NodeRecord;
  direction: number;
  reasons: string[];
  paths: PathEnd[];
  reachesLayer: boolean;
  reachesOutput: boolean;
  /** Its values join another group's at a residual Add (and go on as those). */
  joined: boolean;
  /** Set for groups whose activation the layer states itself (RNN). */
  ownActivation?: { activation: Activation; source: string };
}

interface Arrival {
  group: GroupInfo;
  state: ChannelState;
}

interface MergeRecord {
  input: number;
  group: GroupInfo;
  state: ChannelState;
}

/** A connection on effective (view) axes, before it is mapped onto the stored tensors. */
interface ViewConnection {
  kind: Connection['kind'];
  to: GroupInfo;
  from?: GroupInfo;
  target: AxisMap;
  source?: AxisMap;
  select?: { axis: number; index: number }[];
  groups?: number;
  geometry?: ConvGeometry;
  delay?: 0 | 1;
  regularized?: boolean;
  label?: string;
}

const VIEW_OPS = new Set(['Identity', 'Cast', 'Transpose', 'Unsqueeze', 'Squeeze', 'Reshape', 'Concat']);

class Builder {
  readonly view: GraphView;
  readonly notes: string[] = [];
  readonly groups: GroupInfo[] = [];
  private readonly names = new Set<string>();
  private readonly layers = new Map<NodeRecord, Layer>();
  private readonly arrivals = new Map<Layer, Arrival[]>();
  private readonly merges = new Map<NodeRecord, MergeRecord[]>();
  private readonly pending: { node: NodeRecord; conn: ViewConnection; view: ConstView }[] = [];
  private readonly ties: Tie[] = [];
  private readonly sourceGroups = new Map<string, GroupInfo>();
  private readonly reachable = new Set<string>();
  /** Values some group's units were followed into. */
  private readonly traced = new Set<string>();

  constructor(readonly cp: Checkpoint) {
    const s = onnxStructure(cp);
    this.view = new GraphView(cp.path, s, s.model.graph);
  }

  private uniqueName(wanted: string): string {
    let name = wanted;
    for (let k = 2; this.names.has(name); k++) name = `${wanted} #${k}`;
    this.names.add(name);
    return name;
  }

  private newGroup(name: string, size: number, role: UnitGroup['role']): GroupInfo {
    const g: GroupInfo = { group: { name: this.uniqueName(name), size, role }, direction: 0, reasons: [], paths: [], reachesLayer: false, reachesOutput: false, joined: false };
    this.groups.push(g);
    return g;
  }

  private fix(g: GroupInfo, reason: string): void {
    if (!g.reasons.includes(reason)) g.reasons.push(reason);
  }

  /** The stored float tensors a value is (with `rank` axes when given), or undefined. */
  private weightView(value: string | undefined, rank?: number): ConstView | undefined {
    if (!value) return undefined;
    const v = this.view.constView(value);
    if (!v || (rank !== undefined && v.shape.length !== rank)) return undefined;
    return v.pieces.every((p) => isFloatDType(p.entry.dtype)) ? v : undefined;
  }

  // ---- layers -------------------------------------------------------------------------------

  private findLayers(): void {
    for (const n of this.view.order) {
      if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
      const layer = this.layerOf(n);
      if (layer) this.layers.set(n, layer);
    }
  }

  private layerOf(n: NodeRecord): Layer | undefined {
    const layer = this.layerShape(n);
    // An empty weight has no units to balance (and a corrupt file can claim one).
    return layer && layer.weight.shape.every((d) => d > 0) ? layer : undefined;
  }

  private layerShape(n: NodeRecord): Layer | undefined {
    const base = { node: n, convGroups: 1, groups: [] as GroupInfo[] };
    switch (n.opType) {
      case 'Gemm': {
        const a = this.weightView(n.inputs[0], 2);
        const b = this.weightView(n.inputs[1], 2);
        const tA = attrInt(n, 'transA', 0) === 1;
        const tB = attrInt(n, 'transB', 0) === 1;
        if (b && !a) return { ...base, kind: 'Gemm', dataInput: 0, weight: b, targetAxis: tB ? 0 : 1, sourceAxis: tB ? 1 : 0, inputUnits: b.shape[tB ? 1 : 0] };
        if (a && !b) return { ...base, kind: 'Gemm', dataInput: 1, weight: a, targetAxis: tA ? 1 : 0, sourceAxis: tA ? 0 : 1, inputUnits: a.shape[tA ? 0 : 1] };
        return undefined;
      }
      case 'MatMul': {
        const a = this.weightView(n.inputs[0], 2);
        const b = this.weightView(n.inputs[1], 2);
        if (b && !a) return { ...base, kind: 'MatMul', dataInput: 0, weight: b, targetAxis: 1, sourceAxis: 0, inputUnits: b.shape[0] };
        if (a && !b) return { ...base, kind: 'MatMul', dataInput: 1, weight: a, targetAxis: 0, sourceAxis: 1, inputUnits: a.shape[1] };
        return undefined;
      }
      case 'Conv': {
        const w = this.weightView(n.inputs[1]);
        if (!w || w.shape.length < 3) return undefined;
        const G = attrInt(n, 'group', 1);
        return { ...base, kind: 'Conv', dataInput: 0, weight: w, targetAxis: 0, sourceAxis: 1, inputUnits: w.shape[1] * G, convGroups: G };
      }
      case 'ConvTranspose': {
        const w = this.weightView(n.inputs[1]);
        if (!w || w.shape.length < 3 || attrInt(n, 'group', 1) !== 1) return undefined;
        return { ...base, kind: 'ConvTranspose', dataInput: 0, weight: w, targetAxis: 1, sourceAxis: 0, inputUnits: w.shape[0] };
      }
      case 'RNN': {
        const w = this.weightView(n.inputs[1], 3);
        const r = this.weightView(n.inputs[2], 3);
        if (!w || !r) return undefined;
        return { ...base, kind: 'RNN', dataInput: 0, weight: w, targetAxis: 1, sourceAxis: 2, inputUnits: w.shape[2] };
      }
      default:
        return undefined;
    }
  }

  private createLayerGroups(): void {
    for (const layer of this.layers.values()) {
      const n = layer.node;
      const units = layer.weight.shape[layer.targetAxis];
      if (layer.kind === 'RNN') {
        const dirs = layer.weight.shape[0];
        const direction = attrString(n, 'direction', 'forward');
        for (let d = 0; d < dirs; d++) {
          const suffix = dirs === 1 ? '' : d === 0 ? '/forward' : '/backward';
          const g = this.newGroup(`${nodeLabel(n)}${suffix}`, units, 'hidden');
          g.layer = layer;
          g.origin = n;
          g.direction = d;
          g.ownActivation = this.rnnActivation(n, d, direction);
          layer.groups.push(g);
        }
      } else {
        const g = this.newGroup(nodeLabel(n), units, 'hidden');
        g.layer = layer;
        g.origin = n;
        const dims = this.view.dims.get(n.outputs[0]);
        if ((layer.kind === 'Conv' || layer.kind === 'ConvTranspose') && dims && dims.slice(2).every(isNumber)) g.group.spatial = dims.slice(2).map((d) => d.coef);
        layer.groups.push(g);
      }
    }
  }

  private rnnActivation(n: NodeRecord, d: number, direction: string): { activation: Activation; source: string } {
    const names = attr(n, 'activations')?.strings ?? [];
    const name = names[d] ?? names[0] ?? 'Tanh';
    const alphas = attr(n, 'activation_alpha')?.floats ?? [];
    const source = `ONNX node '${nodeLabel(n)}' (RNN, ${direction}, activations=[${names.join(', ') || 'Tanh (default)'}])`;
    if (name === 'Relu') return { activation: relu(), source };
    if (name === 'LeakyRelu') return { activation: leakyRelu(alphas[d] ?? alphas[0] ?? 0.01), source };
    return { activation: other(name), source };
  }

  // ---- following values ---------------------------------------------------------------------

  /** Values that some group's units may reach (forward closure of the values they start from). */
  private extendReachable(from: readonly string[]): void {
    const stack = [...from];
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (this.reachable.has(v)) continue;
      this.reachable.add(v);
      for (const u of this.view.uses(v)) if (!this.layers.has(u.node)) stack.push(...u.node.outputs.filter(Boolean));
    }
  }

  private startTraces(): void {
    for (const layer of this.layers.values()) {
      const n = layer.node;
      const out = this.view.dims.get(n.outputs[0]);
      for (const g of layer.groups) {
        const seen = new Set<string>();
        if (layer.kind === 'RNN') {
          // Y is [seq, dirs, batch, hidden] (layout 0) or [batch, seq, dirs, hidden]: units on axis 3 either way; Y_h on axis 2.
          const dirs = layer.weight.shape[0];
          if (dirs > 1) {
            if (n.outputs.some((o) => o && (this.view.uses(o).length > 0 || this.view.outputs.has(o)))) this.fix(g, `the outputs of bidirectional RNN '${nodeLabel(n)}' interleave directions, which the builder does not follow`);
            continue;
          }
          if (n.outputs[0]) this.trace(g, n.outputs[0], { axis: 3, rank: 4, start: 0, inner: 1 }, undefined, [], seen);
          if (n.outputs[1]) this.trace(g, n.outputs[1], { axis: 2, rank: 3, start: 0, inner: 1 }, undefined, [], seen);
          continue;
        }
        const rank = out?.length ?? (layer.kind === 'Gemm' ? 2 : layer.kind === 'MatMul' ? undefined : layer.weight.shape.length);
        if (rank === undefined) {
          this.fix(g, `the output of '${nodeLabel(n)}' has unknown rank`);
          continue;
        }
        let axis: number;
        if (layer.kind === 'Conv' || layer.kind === 'ConvTranspose') axis = 1;
        else if (layer.kind === 'Gemm') axis = layer.dataInput === 0 ? 1 : 0;
        else axis = layer.dataInput === 0 ? rank - 1 : rank - 2;
        this.trace(g, n.outputs[0], { axis, rank, start: 0, inner: 1 }, undefined, [], seen);
      }
    }
  }

  private trace(g: GroupInfo, value: string, state: ChannelState, act: Activation | undefined, actNodes: string[], seen: Set<string>): void {
    const key = `${value}|${state.axis}|${state.rank}|${state.start}|${state.inner}`;
    if (seen.has(key)) return;
    seen.add(key);
    this.traced.add(value);
    if (this.view.outputs.has(value)) {
      g.reachesOutput = true;
      g.paths.push({ activation: act, nodes: actNodes });
    }
    for (const use of this.view.uses(value)) this.consume(g, use.node, use.input, state, act, actNodes, seen);
  }

  private consume(g: GroupInfo, node: NodeRecord, input: number, state: ChannelState, act: Activation | undefined, actNodes: string[], seen: Set<string>): void {
    const stopHere = (reason: string) => this.fix(g, `feeds ${node.opType} (node '${nodeLabel(node)}'): ${reason}`);
    const layer = this.layers.get(node);
    if (layer) {
      if (input !== layer.dataInput) return stopHere('is used as a weight of that layer');
      const list = this.arrivals.get(layer) ?? [];
      list.push({ group: g, state });
      this.arrivals.set(layer, list);
      g.reachesLayer = true;
      g.paths.push({ activation: act, nodes: actNodes });
      return;
    }
    if (node.opType === 'BatchNormalization') return this.batchNorm(g, node, input, state, act, actNodes, seen, stopHere);
    if (node.opType === 'Add' || node.opType === 'Sub') return this.addOrSub(g, node, input, state, act, actNodes, seen, stopHere);
    const p = passThrough({ view: this.view, node, input, state, units: g.group.size });
    if (!p) return stopHere(stopReason(node.opType));
    if (p.kind === 'stop') return stopHere(p.reason);
    let nextAct = act;
    let nextNodes = actNodes;
    if (p.kind === 'fixed') {
      this.fix(g, p.reason);
      nextAct = composeActivations(act, p.activation);
      nextNodes = [...actNodes, nodeLabel(node)];
    } else if (p.activation) {
      nextAct = composeActivations(act, p.activation);
      nextNodes = [...actNodes, nodeLabel(node)];
    }
    for (const o of p.outputs) if (node.outputs[o.output]) this.trace(g, node.outputs[o.output], o.state, nextAct, nextNodes, seen);
  }

  /** Elements per unit once known: from a parameter's extent along the unit axis. */
  private resolveInner(g: GroupInfo, state: ChannelState, extent: number): ChannelState | undefined {
    if (state.inner > 0) return state;
    if (state.start !== 0 || extent % g.group.size !== 0) return undefined;
    return { ...state, inner: extent / g.group.size };
  }

  private batchNorm(g: GroupInfo, node: NodeRecord, input: number, state: ChannelState, act: Activation | undefined, actNodes: string[], seen: Set<string>, stopHere: (r: string) => void): void {
    if (input !== 0) return stopHere('uses the units as normalization parameters');
    if (state.axis !== 1) return stopHere('normalizes along another axis');
    if (attrInt(node, 'training_mode', 0) === 1 || node.outputs.slice(1).some((o) => o && this.view.uses(o).length > 0)) return stopHere('runs in training mode');
    const [, , beta, mean] = node.inputs;
    const vb = this.weightView(beta, 1);
    const vm = this.weightView(mean, 1);
    const others = [node.inputs[1], node.inputs[4]].every((v) => v && this.view.isConstant(v));
    if (!vb || !vm || !others) return stopHere('has parameters computed at run time');
    const s = this.resolveInner(g, state, vb.shape[0]);
    if (!s) return stopHere('cannot be matched to the units');
    // y = γ(x − μ)/σ + β: with x scaled by λ, μ and β scale by λ too; γ and σ do not.
    const target: AxisMap = { axis: 0, start: s.start, length: g.group.size * s.inner, inner: s.inner };
    this.pending.push({ node, view: vb, conn: { kind: 'bias', to: g, target, label: `${nodeLabel(node)} β` } });
    this.pending.push({ node, view: vm, conn: { kind: 'bias', to: g, target, regularized: false, label: `${nodeLabel(node)} running mean` } });
    this.trace(g, node.outputs[0], s, act, actNodes, seen);
  }

  private addOrSub(g: GroupInfo, node: NodeRecord, input: number, state: ChannelState, act: Activation | undefined, actNodes: string[], seen: Set<string>, stopHere: (r: string) => void): void {
    if (node.inputs.length !== 2) return stopHere('has more than two inputs');
    const otherValue = node.inputs[1 - input];
    const cv = this.weightView(otherValue);
    if (cv) {
      const a = state.axis - (state.rank - cv.shape.length);
      const zero = () => this.view.constantValues(otherValue)?.every((v) => v === 0) ?? false;
      if (a < 0 || cv.shape[a] === 1) {
        if (zero()) return this.trace(g, node.outputs[0], state, act, actNodes, seen);
        return stopHere('adds one constant to all units, which cannot scale with each unit');
      }
      const s = this.resolveInner(g, state, cv.shape[a]);
      if (!s || s.start + g.group.size * s.inner > cv.shape[a]) return stopHere('adds a constant that does not line up with the units');
      // A constant added to scaled values must scale with them: it is a bias of these units.
      this.pending.push({ node, view: cv, conn: { kind: 'bias', to: g, target: { axis: a, start: s.start, length: g.group.size * s.inner, inner: s.inner }, label: `${nodeLabel(node)} bias` } });
      return this.trace(g, node.outputs[0], s, act, actNodes, seen);
    }
    if (otherValue && this.view.isConstant(otherValue)) {
      if (this.view.isZeroFill(otherValue)) return this.trace(g, node.outputs[0], state, act, actNodes, seen);
      return stopHere('adds a constant the builder cannot map to the units');
    }
    // Two computed values: a residual join. One side carries on; the groups are tied afterwards.
    const list = this.merges.get(node) ?? [];
    list.push({ input, group: g, state });
    this.merges.set(node, list);
    const survivor = node.inputs[0] === node.inputs[1] || this.reachable.has(node.inputs[0]) ? 0 : 1;
    if (input === survivor) this.trace(g, node.outputs[0], state, act, actNodes, seen);
    else {
      g.joined = true;
      g.paths.push({ activation: act, nodes: actNodes, joinedAt: `residual ${node.opType} node '${nodeLabel(node)}'` });
    }
  }

  /**
   * Per-channel affine maps on values no group reaches (the γ, β of a LayerNorm or of a BatchNorm
   * after something that cannot scale, or x·γ on an input): y_i = γ_i·v_i + β_i is a unit of its
   * own whose incoming weights are γ_i and β_i, so it can be balanced against the layer reading y.
   */
  private affineGroups(): void {
    // In graph order, each followed at once: a later Mul that an earlier affine group's values
    // already pass through is part of that group's path, not a group of its own.
    for (const n of this.view.order) {
      if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
      const made = this.affineOf(n);
      if (!made) continue;
      this.extendReachable([made.value]);
      this.trace(made.g, made.value, made.state, undefined, [], new Set());
    }
  }

  private affineOf(n: NodeRecord): { g: GroupInfo; value: string; state: ChannelState } | undefined {
    const untraced = (v: string | undefined) => !!v && !this.traced.has(v) && !this.view.isConstant(v);
    const make = (size: number, scale: ConstView, scaleAxis: number, bias: ConstView | undefined, biasAxis: number, state: ChannelState) => {
      const g = this.newGroup(`${nodeLabel(n)} (affine)`, size, 'hidden');
      g.origin = n;
      this.pending.push({ node: n, view: scale, conn: { kind: 'bias', to: g, target: { axis: scaleAxis }, label: 'scale' } });
      if (bias) this.pending.push({ node: n, view: bias, conn: { kind: 'bias', to: g, target: { axis: biasAxis }, label: 'bias' } });
      return { g, value: n.outputs[0], state };
    };
    const rankOf = (v: string) => this.view.dims.get(v)?.length;
    if (n.opType === 'Mul' && n.inputs.length === 2) {
      const k = this.weightView(n.inputs[1]) ? 1 : this.weightView(n.inputs[0]) ? 0 : -1;
      if (k < 0 || !untraced(n.inputs[1 - k])) return undefined;
      const c = this.weightView(n.inputs[k])!;
      const rank = rankOf(n.inputs[1 - k]);
      const varying = c.shape.map((d, i) => (d > 1 ? i : -1)).filter((i) => i >= 0);
      if (rank === undefined || varying.length !== 1 || c.shape.length > rank) return undefined;
      const axis = varying[0] + rank - c.shape.length;
      const d = this.view.dims.get(n.inputs[1 - k])![axis];
      if (!isNumber(d) || d.coef !== c.shape[varying[0]]) return undefined;
      return make(d.coef, c, varying[0], undefined, 0, { axis, rank, start: 0, inner: 1 });
    }
    // A LayerNorm's output never carries an earlier group's scale (it divides it out).
    if (n.opType === 'LayerNormalization') {
      const scale = this.weightView(n.inputs[1], 1);
      const bias = n.inputs[2] ? this.weightView(n.inputs[2], 1) : undefined;
      const rank = rankOf(n.inputs[0]);
      const axis = attrInt(n, 'axis', -1);
      if (!scale || (n.inputs[2] && !bias) || rank === undefined || (axis !== -1 && axis !== rank - 1)) return undefined;
      return make(scale.shape[0], scale, 0, bias, 0, { axis: rank - 1, rank, start: 0, inner: 1 });
    }
    if ((n.opType === 'BatchNormalization' || n.opType === 'InstanceNormalization') && untraced(n.inputs[0])) {
      const scale = this.weightView(n.inputs[1], 1);
      const bias = this.weightView(n.inputs[2], 1);
      const rank = rankOf(n.inputs[0]);
      if (!scale || !bias || rank === undefined || rank < 2) return undefined;
      if (n.opType === 'BatchNormalization' && (attrInt(n, 'training_mode', 0) === 1 || ![n.inputs[3], n.inputs[4]].every((v) => v && this.view.isConstant(v)))) return undefined;
      return make(scale.shape[0], scale, 0, bias, 0, { axis: 1, rank, start: 0, inner: 1 });
    }
    return undefined;
  }

  private resolveMerges(): void {
    for (const [node, records] of this.merges) {
      const side = (i: number) => records.filter((r) => r.input === i);
      const [a, b] = [side(0), side(1)];
      const label = `${node.opType} node '${nodeLabel(node)}'`;
      if (a.length === 0 || b.length === 0) {
        const other = node.inputs[a.length === 0 ? 0 : 1];
        for (const r of records) this.fix(r.group, `is joined by ${label} with ${other}, which does not scale with it`);
        continue;
      }
      const same = (x: MergeRecord, y: MergeRecord) => x.state.axis === y.state.axis && x.state.rank === y.state.rank && x.state.start === y.state.start && x.state.inner === y.state.inner && x.group.group.size === y.group.group.size;
      const matched = new Set<MergeRecord>();
      for (const y of b) {
        const x = a.find((r) => same(r, y));
        if (!x) continue;
        matched.add(x).add(y);
        if (x.group !== y.group) this.ties.push({ groups: [x.group.group.name, y.group.group.name], reason: `residual ${label}` });
      }
      for (const r of records) if (!matched.has(r)) this.fix(r.group, `is joined by ${label} with values whose units do not line up with its own`);
    }
  }

  // ---- connections --------------------------------------------------------------------------

  /** The axis of the layer's data input that its weights contract. */
  private contractedAxis(layer: Layer, rank: number): number {
    const n = layer.node;
    switch (layer.kind) {
      case 'Gemm':
        return layer.dataInput === 0 ? (attrInt(n, 'transA', 0) ? 0 : 1) : attrInt(n, 'transB', 0) ? 1 : 0;
      case 'MatMul':
        return layer.dataInput === 0 ? rank - 1 : rank - 2;
      case 'RNN':
        return 2;
      default:
        return 1;
    }
  }

  /** A visible group standing for a value the builder does not follow (an input, or what a non-layer computes). */
  private sourceGroup(value: string, start: number, length: number, whole: boolean, image: boolean): GroupInfo {
    const key = `${value}|${start}|${length}`;
    const known = this.sourceGroups.get(key);
    if (known) return known;
    const isInput = this.view.inputs.includes(value) || !this.hasLayerUpstream(value);
    const name = whole ? value : `${value}[${start}:${start + length}]`;
    const g = this.newGroup(name, length, isInput ? 'input' : 'hidden');
    if (!isInput) {
      const p = this.view.producer.get(value);
      const op = p ? p.node.opType : 'unknown';
      g.group.activation = other(op);
      g.group.activationSource = p ? `ONNX node '${nodeLabel(p.node)}' (${op})` : 'unknown';
      this.fix(g, p ? `computed by ${op} (node '${nodeLabel(p.node)}'), which the builder does not follow` : 'not followed');
    }
    // Channels of an image-like value read by a convolution: N, C, then the spatial axes.
    const dims = this.view.dims.get(value);
    if (image && dims && dims.length > 2 && dims.slice(2).every(isNumber)) g.group.spatial = dims.slice(2).map((d) => d.coef);
    this.sourceGroups.set(key, g);
    return g;
  }

  private hasLayerUpstream(value: string): boolean {
    const seen = new Set<string>();
    const stack = [value];
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = this.view.producer.get(v);
      if (!p) continue;
      if (this.layers.has(p.node)) return true;
      stack.push(...p.node.inputs.filter(Boolean));
    }
    return false;
  }

  private layerConnections(): void {
    for (const layer of this.layers.values()) {
      const n = layer.node;
      const dataValue = n.inputs[layer.dataInput];
      const rank = this.view.dims.get(dataValue)?.length ?? (layer.kind === 'Gemm' ? 2 : layer.kind === 'RNN' ? 3 : layer.weight.shape.length);
      const axis = this.contractedAxis(layer, rank);
      const K = layer.inputUnits;
      const G = layer.convGroups;
      // Which parts of the contracted axis come from which group.
      const covered: { start: number; end: number; group: GroupInfo; map: AxisMap }[] = [];
      const arrivals = this.arrivals.get(layer) ?? [];
      for (const ar of arrivals) {
        const g = ar.group;
        const where = `reaches ${n.opType} (node '${nodeLabel(n)}')`;
        if (ar.state.axis !== axis) {
          this.fix(g, `${where} on an axis it does not contract`);
          continue;
        }
        let s: ChannelState | undefined = ar.state;
        if (s.inner === 0) s = arrivals.length === 1 ? this.resolveInner(g, s, K) : undefined;
        if (!s) {
          this.fix(g, `${where}, but its units cannot be matched to the layer's inputs`);
          continue;
        }
        const start = s.start;
        const end = start + g.group.size * s.inner;
        if (s.inner < 1 || start < 0 || end > K || covered.some((c) => c.start < end && start < c.end) || (G > 1 && (start !== 0 || end !== K || s.inner !== 1))) {
          this.fix(g, `${where}, but its units do not line up with the layer's inputs`);
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
      for (const [a, b] of gaps) {
        const whole = a === 0 && b === K;
        const g = this.sourceGroup(dataValue, a, b - a, whole, layer.kind === 'Conv' || layer.kind === 'ConvTranspose');
        covered.push({ start: a, end: b, group: g, map: G > 1 ? { axis: layer.sourceAxis } : whole ? { axis: layer.sourceAxis } : { axis: layer.sourceAxis, start: a, length: b - a } });
      }
      const geometry = layer.kind === 'Conv' ? convGeometry(n) : undefined;
      layer.groups.forEach((g, d) => {
        const select = layer.kind === 'RNN' ? [{ axis: 0, index: d }] : undefined;
        const kind: Connection['kind'] = layer.kind === 'Conv' || layer.kind === 'ConvTranspose' ? 'conv' : 'dense';
        for (const c of covered) {
          this.pending.push({
            node: n,
            view: layer.weight,
            conn: { kind, to: g, from: c.group, target: { axis: layer.targetAxis }, source: c.map, select, groups: G > 1 ? G : undefined, geometry },
          });
        }
        this.layerExtras(layer, g, d);
      });
    }
  }

  /** Biases, the recurrent weights and an RNN's initial state. */
  private layerExtras(layer: Layer, g: GroupInfo, d: number): void {
    const n = layer.node;
    if (layer.kind === 'Gemm' || layer.kind === 'MatMul') {
      if (layer.kind === 'Gemm') {
        const alpha = attrFloat(n, 'alpha', 1);
        const beta = attrFloat(n, 'beta', 1);
        if (alpha !== 1 || beta !== 1) this.notes.push(`${nodeLabel(n)}: Gemm alpha=${alpha}, beta=${beta}; costs are measured on the stored tensors (the scaling stays exact)`);
        const c = n.inputs[2];
        if (c) this.biasOf(g, n, c, layer.dataInput === 0 ? 1 : 0, 2, 'C');
      }
      return;
    }
    if (layer.kind === 'Conv' || layer.kind === 'ConvTranspose') {
      if (n.inputs[2]) this.biasOf(g, n, n.inputs[2], 0, 1, 'B');
      return;
    }
    // RNN: R [dirs, hidden, hidden] recurrent (h_{t−1} → h_t), B [dirs, 2·hidden] = Wb ++ Rb.
    const H = g.group.size;
    const r = this.weightView(n.inputs[2], 3)!;
    this.pending.push({ node: n, view: r, conn: { kind: 'dense', to: g, from: g, target: { axis: 1 }, source: { axis: 2 }, select: [{ axis: 0, index: d }], delay: 1 } });
    const b = n.inputs[3] ? this.weightView(n.inputs[3], 2) : undefined;
    if (n.inputs[3] && !b && !this.view.isZeroFill(n.inputs[3])) this.fix(g, `the bias of RNN '${nodeLabel(n)}' is computed at run time`);
    if (b) {
      this.pending.push({ node: n, view: b, conn: { kind: 'bias', to: g, target: { axis: 1, start: 0, length: H }, select: [{ axis: 0, index: d }], label: 'Wb' } });
      this.pending.push({ node: n, view: b, conn: { kind: 'bias', to: g, target: { axis: 1, start: H, length: H }, select: [{ axis: 0, index: d }], label: 'Rb' } });
    }
    if (attr(n, 'clip')) this.fix(g, `RNN '${nodeLabel(n)}' clips its cell input, which is not positively homogeneous`);
    const h0 = n.inputs[5];
    if (h0 && !this.view.isZeroFill(h0)) {
      const v = this.weightView(h0, 3);
      // A constant initial state is a value of the hidden units: it scales with them.
      if (v) this.pending.push({ node: n, view: v, conn: { kind: 'bias', to: g, target: { axis: 2 }, select: [{ axis: 0, index: d }], regularized: false, label: 'initial_h' } });
      else this.fix(g, `the initial state of RNN '${nodeLabel(n)}' comes from ${h0}, which does not scale with the units`);
    }
  }

  /** A layer's bias input, broadcast against its output: per unit along `axis` of a rank-`rank` output. */
  private biasOf(g: GroupInfo, n: NodeRecord, value: string, axis: number, rank: number, what: string): void {
    const v = this.weightView(value);
    if (!v) {
      if (!this.view.isZeroFill(value)) this.fix(g, `the bias ${what} of '${nodeLabel(n)}' is computed at run time`);
      return;
    }
    const a = v.shape.length === 1 && rank !== 2 ? 0 : axis - (rank - v.shape.length);
    if (a < 0 || v.shape[a] === 1) {
      if (g.group.size === 1 || this.view.constantValues(value)?.every((x) => x === 0)) {
        if (g.group.size === 1 && v.shape.every((d) => d === 1)) this.pending.push({ node: n, view: v, conn: { kind: 'bias', to: g, target: { axis: Math.max(a, 0) } } });
        return;
      }
      this.fix(g, `the bias ${what} of '${nodeLabel(n)}' is one number shared by all units`);
      return;
    }
    this.pending.push({ node: n, view: v, conn: { kind: 'bias', to: g, target: { axis: a } } });
  }

  // ---- from view connections to stored tensors -------------------------------------------------

  /** Maps a connection on a view's axes onto the stored tensors it is made of. */
  private mapToStored(conn: ViewConnection, view: ConstView): { entry: TensorEntry; value: string; c: Omit<Connection, 'tensor'> }[] | string {
    const out: { entry: TensorEntry; value: string; c: Omit<Connection, 'tensor'> }[] = [];
    const ranges: { axis: number; start: number; length: number }[] = [];
    const range = (m: AxisMap | undefined) => m && { axis: m.axis, start: m.start ?? 0, length: m.length ?? view.shape[m.axis] - (m.start ?? 0) };
    const tr = range(conn.target)!;
    const sr = range(conn.source);
    ranges.push(tr);
    if (sr) ranges.push(sr);
    for (const s of conn.select ?? []) ranges.push({ axis: s.axis, start: s.index, length: 1 });
    const multi = view.pieces.length > 1;
    for (const piece of view.pieces) {
      let shift = 0;
      if (multi) {
        const r = ranges.find((x) => x.axis === view.concatAxis);
        if (r) {
          if (r.start + r.length <= piece.start || r.start >= piece.start + piece.length) continue;
          if (r.start < piece.start || r.start + r.length > piece.start + piece.length) return `spans parts of ${view.via.join(', ') || 'a Concat'} that the engine cannot join`;
          shift = piece.start;
        }
      }
      const mapAxis = (m: AxisMap): AxisMap | string => {
        const stored = piece.axes[m.axis];
        if (stored === null || stored === undefined) return 'maps units onto an inserted axis';
        const s = (m.start ?? 0) - (multi && m.axis === view.concatAxis ? shift : 0);
        const res: AxisMap = { axis: stored };
        if (m.start !== undefined || (multi && m.axis === view.concatAxis)) res.start = s;
        if (m.length !== undefined) res.length = m.length;
        if (m.inner !== undefined && m.inner !== 1) res.inner = m.inner;
        return res;
      };
      const target = mapAxis(conn.target);
      if (typeof target === 'string') return target;
      const source = conn.source ? mapAxis(conn.source) : undefined;
      if (typeof source === 'string') return source;
      const select: { axis: number; index: number }[] = [];
      for (const s of conn.select ?? []) {
        const stored = piece.axes[s.axis];
        const index = s.index - (multi && s.axis === view.concatAxis ? shift : 0);
        if (stored === null || stored === undefined) {
          if (index !== 0) return 'selects on an inserted axis';
          continue;
        }
        select.push({ axis: stored, index });
      }
      const used = new Set([target.axis, ...(source ? [source.axis] : []), ...select.map((s) => s.axis)]);
      // Kernel taps: the stored axes left over, in the order the view shows them.
      const kernelAxes = piece.axes.filter((a): a is number => a !== null && !used.has(a));
      const c: Omit<Connection, 'tensor'> = {
        kind: conn.kind,
        to: conn.to.group.name,
        target,
        ...(conn.from ? { from: conn.from.group.name, source } : {}),
        ...(select.length ? { select } : {}),
        ...(conn.groups ? { groups: conn.groups } : {}),
        ...(conn.kind === 'conv' ? { kernelAxes } : {}),
        ...(conn.geometry ? { geometry: conn.geometry } : {}),
        ...(conn.delay ? { delay: conn.delay } : {}),
        ...(conn.regularized === false ? { regularized: false } : {}),
      };
      out.push({ entry: piece.entry, value: piece.value, c });
    }
    return out;
  }

  /** Reason the stored value is read by anything but this node (through view nodes), if it is. */
  private sharedUse(value: string, node: NodeRecord): string | undefined {
    const stack = [value];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      if (this.view.outputs.has(v)) return `${value} is also a graph output`;
      for (const u of this.view.uses(v)) {
        if (u.node === node) continue;
        if (VIEW_OPS.has(u.node.opType)) stack.push(...u.node.outputs.filter(Boolean));
        else return `${value} is also used by ${u.node.opType} node '${nodeLabel(u.node)}'`;
      }
    }
    return undefined;
  }

  private finishConnections(): { connections: Connection[]; tensors: Tensor[] } {
    const connections: Connection[] = [];
    const entries = new Map<string, TensorEntry>();
    const owners = new Map<string, Set<NodeRecord>>();
    const mapped: { conn: ViewConnection; node: NodeRecord; entry: TensorEntry; c: Omit<Connection, 'tensor'> }[] = [];
    for (const { node, conn, view } of this.pending) {
      const m = this.mapToStored(conn, view);
      const ends = [conn.to, ...(conn.from ? [conn.from] : [])];
      if (typeof m === 'string') {
        for (const g of ends) this.fix(g, `the weights of '${nodeLabel(node)}' ${m}`);
        continue;
      }
      for (const { entry, value, c } of m) {
        const why = entry.readOnlyReason ?? (isFloatDType(entry.dtype) ? undefined : `${entry.dtype} weights cannot be scaled`) ?? this.sharedUse(value, node);
        if (why) {
          for (const g of ends) {
            this.fix(g, `weights ${entry.name} cannot be rewritten: ${why}`);
          }
          continue;
        }
        const set = owners.get(entry.name) ?? new Set<NodeRecord>();
        set.add(node);
        owners.set(entry.name, set);
        entries.set(entry.name, entry);
        mapped.push({ conn, node, entry, c });
      }
    }
    for (const { conn, entry, c } of mapped) {
      const set = owners.get(entry.name)!;
      if (set.size > 1) {
        const names = [...set].map((x) => `'${nodeLabel(x)}'`).join(' and ');
        for (const g of [conn.to, ...(conn.from ? [conn.from] : [])]) this.fix(g, `weights ${entry.name} are shared by nodes ${names}`);
      }
      connections.push({ ...(conn.label ? { name: `${entry.name} (${conn.label})` } : {}), tensor: entry.name, ...c });
    }
    const tensors: Tensor[] = [];
    for (const e of entries.values()) tensors.push(loadTensor(e));
    return { connections, tensors };
  }

  // ---- groups' final form --------------------------------------------------------------------

  /** Whether a node's outputs flow, through non-layers only, into a graph output and into no layer. */
  private leadsOnlyToOutputs(n: NodeRecord): boolean {
    let output = false;
    const seen = new Set<string>();
    const stack = n.outputs.filter(Boolean);
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      if (this.view.outputs.has(v)) output = true;
      for (const u of this.view.uses(v)) {
        if (this.layers.has(u.node)) return false;
        stack.push(...u.node.outputs.filter(Boolean));
      }
    }
    return output;
  }

  private finishGroups(): void {
    for (const g of this.groups) {
      if (!g.origin) {
        if (g.reasons.length > 0 && g.group.role === 'hidden') g.group.visible = g.reasons.map((reason) => ({ reason }));
        continue;
      }
      const n = g.origin;
      const first = g.paths.find((p) => p.activation?.kind === 'other') ?? g.paths[0];
      if (g.ownActivation) {
        g.group.activation = g.ownActivation.activation;
        g.group.activationSource = g.ownActivation.source;
        if (g.ownActivation.activation.kind === 'other') this.fix(g, `RNN '${nodeLabel(n)}' uses ${g.ownActivation.activation.name}, which is not positively homogeneous`);
      } else {
        g.group.activation = first?.activation ?? identity();
        const direct = `ONNX node '${nodeLabel(n)}' (${n.opType}): its output is used directly (linear)`;
        const named = first && first.nodes.length > 0 ? `ONNX node${first.nodes.length > 1 ? 's' : ''} ${first.nodes.map((x) => `'${x}'`).join(' → ')}` : direct;
        g.group.activationSource = first?.joinedAt ? `${first.nodes.length > 0 ? named : direct}, up to ${first.joinedAt}` : named;
        const kinds = new Set(g.paths.map((p) => (p.activation ? JSON.stringify(p.activation) : 'identity')));
        if (kinds.size > 1) this.notes.push(`${g.group.name}: its values reach later layers through different activations; listed as ${g.group.activation.name ?? g.group.activation.kind}`);
      }
      // A layer whose values reach no other layer, only the graph's outputs (perhaps through a
      // Softmax or Sigmoid), is an output layer: visible by role, whatever stopped its scale.
      if (!g.reachesLayer && (g.reachesOutput || this.leadsOnlyToOutputs(n))) {
        g.group.role = 'output';
        continue;
      }
      if (g.reachesOutput) this.fix(g, 'is also a graph output');
      if (!g.reachesLayer && !g.reachesOutput && !g.joined && g.reasons.length === 0) this.fix(g, 'its values are not used by any layer or output');
      if (g.reasons.length > 0) g.group.visible = g.reasons.map((reason) => ({ reason }));
    }
  }

  build(): OnnxNetwork {
    const s = onnxStructure(this.cp);
    this.findLayers();
    this.createLayerGroups();
    this.extendReachable([...this.layers.values()].flatMap((l) => l.node.outputs.filter(Boolean)));
    this.startTraces();
    this.affineGroups();
    this.resolveMerges();
    this.layerConnections();
    const { connections, tensors } = this.finishConnections();
    this.finishGroups();
    const subTensors = this.cp.tensors.filter((e) => s.records.get(e.name)!.graph !== 'main').length;
    if (subTensors > 0) this.notes.push(`${subTensors} tensor(s) inside If/Loop/Scan subgraphs are listed but not balanced: the builder does not follow subgraphs`);
    if (this.layers.size === 0) this.notes.push('no layer with constant weights (Gemm, MatMul, Conv, ConvTranspose, RNN) was found');
    for (const t of this.ties) this.notes.push(`tied ${t.groups.join(' = ')} (${t.reason})`);
    // Layers stay listed even when none of their weights could be used (they say why);
    // source groups exist only where a connection needed one.
    const groups = this.groups.map((g) => g.group);
    const network: Network = { name: s.model.graph.name || this.cp.path, groups, tensors, connections, ...(this.ties.length ? { ties: this.ties } : {}) };
    return { network, notes: this.notes };
  }
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

/** The network an ONNX checkpoint describes, with notes on what the builder inferred or skipped. */
export function onnxToNetwork(cp: Checkpoint): OnnxNetwork {
  try {
    return new Builder(cp).build();
  } catch (e) {
    throw asFileError(cp.path, e);
  }
}
