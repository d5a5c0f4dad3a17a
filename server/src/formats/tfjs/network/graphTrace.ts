// Graph-model phase 2: walk the ordered nodes, giving each value a GValue and growing the
// network draft. MatMul and convolutions make groups; a BiasAdd or activation folds into the
// group that produced its input while nothing else reads that value; otherwise an activation
// gets a group of its own joined by a skip, and a residual add is a group with two skips.
// Operators that pass a positive per-channel scale through (graphPass.ts) carry the value on;
// any other node is a barrier: the hidden units feeding it stay fixed, with the node named as
// the reason, and its output counts as a network input (never a whole-file failure).
import type { Activation } from '../../../engine/activation';
import type { Tensor } from '../../../tensor/tensor';
import type { TensorEntry } from '../../core/checkpoint';
import type { Dim } from '../../keras/geometry';
import type { TfjsGraphNode } from '../read';
import { barrier, foldable, input, materialize, newGroup, Unsupported, weight, type GraphContext, type GraphDraft, type GroupGValue, type GValue } from './graphDraft';
import { conv, matmul } from './graphLayers';
import { aliasOp, concat, mergeDims, minMax, multiply, padOp, perChannel, pool, preluOf, reduce, resize, settle } from './graphPass';
import { ACTIVATION_OPS, ALIAS_OPS, attrStrings, inputKey, opActivation, stopReason, type Json } from './ops';

export interface GraphTrace {
  draft: GraphDraft;
  values: ReadonlyMap<string, GValue>;
  uses: ReadonlyMap<string, number>;
}

export function traceNodes(order: readonly TfjsGraphNode[], uses: ReadonlyMap<string, number>, entries: ReadonlyMap<string, TensorEntry>, ints: Readonly<Record<string, number[]>>, leadingNotes: readonly string[]): GraphTrace {
  const draft: GraphDraft = { groups: [], byName: new Map(), connections: [], tensors: new Map(), notes: [...leadingNotes], visible: new Map(), caveats: new Set() };
  const ctx: GraphContext = { draft, entries, ints, values: new Map(), uses: new Map(uses) };
  for (const n of order) {
    let v: GValue | undefined;
    try {
      v = node(ctx, n);
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      v = barrier(ctx, n, e.message, elementwiseShape(ctx, n));
    }
    if (v) ctx.values.set(n.name, v);
  }
  return { draft, values: ctx.values, uses: ctx.uses };
}

/** The shape of a barrier's output where the op keeps its input's shape (elementwise ops). */
function elementwiseShape(ctx: GraphContext, n: TfjsGraphNode): Dim[] | undefined {
  if (!ELEMENTWISE.has(n.op) && !ACTIVATION_OPS.has(n.op)) return undefined;
  const v = ctx.values.get(inputKey(n.input[0] ?? '') ?? '');
  return v && v.kind !== 'const' ? v.shape : undefined;
}

const ELEMENTWISE = new Set([
  'Mul', 'Sub', 'Add', 'AddV2', 'RealDiv', 'Div', 'Minimum', 'Maximum', 'Abs', 'Neg', 'Square', 'Sqrt', 'Rsqrt', 'Exp', 'Log',
  'Cast', 'ClipByValue', 'Pow', 'SquaredDifference', 'Floor', 'Round', 'Sign', 'Reciprocal', 'Erf', 'Prelu', 'BiasAdd',
]);

function addBias(d: GraphDraft, n: TfjsGraphNode, v: GroupGValue, bias: Tensor): GroupGValue {
  const size = d.byName.get(v.group)!.size;
  if (bias.data.length !== size) throw new Error(`node ${n.name}: bias of shape [${bias.shape.join(', ')}] for ${size} channels`);
  d.connections.push({ tensor: bias.name, kind: 'bias', to: v.group, target: { axis: 0 } });
  return { ...v, stage: 'biased', owner: n.name };
}

function activate(ctx: GraphContext, n: TfjsGraphNode, v: GroupGValue, a: Activation, fold: boolean): GroupGValue {
  const d = ctx.draft;
  const g = d.byName.get(v.group)!;
  if (fold && (v.stage === 'linear' || v.stage === 'biased')) {
    g.activation = a;
    g.activationSource = `${n.name} (${n.op})`;
    return { ...v, stage: 'activated', owner: n.name };
  }
  // Read elsewhere too, or already activated: a group of its own, joined by a skip.
  const own = newGroup(d, n.name, g.size, v.shape);
  own.activation = a;
  own.activationSource = `${n.name} (${n.op})`;
  d.connections.push({ kind: 'skip', from: v.group, to: n.name, target: { axis: 0 } });
  return { kind: 'group', group: n.name, shape: v.shape, stage: 'activated', owner: n.name };
}

/** A MatMul or convolution, plain or with its fused bias and activation. */
function weighted(ctx: GraphContext, n: TfjsGraphNode): GValue {
  const op = n.op;
  const fused = op.startsWith('_Fused') || op.startsWith('FusedDepthwise') ? attrStrings(n.attr, 'fused_ops') : [];
  // Fused weights are loaded (and checked) before any group is made.
  let arg = 2;
  const steps: ({ bias: Tensor } | { activation: Activation; op: string })[] = [];
  for (const f of fused) {
    if (f === 'BiasAdd' || f === 'Add' || f === 'AddV2') steps.push({ bias: weight(ctx, n, arg++) });
    else if (f === 'Prelu') steps.push({ activation: preluOf(weight(ctx, n, arg++)), op: f });
    else if (ACTIVATION_OPS.has(f)) steps.push({ activation: opActivation(f, n.attr), op: f });
    else throw new Unsupported(`its fused ${f} is not modelled`);
  }
  let g = op.includes('MatMul') ? matmul(ctx, n) : conv(ctx, n, op.includes('Depthwise'));
  for (const s of steps) {
    if ('bias' in s) g = addBias(ctx.draft, n, g, s.bias);
    else {
      const grp = ctx.draft.byName.get(g.group)!;
      grp.activation = s.activation;
      grp.activationSource = `${n.name} (${op} fused ${s.op})`;
      g = { ...g, stage: 'activated' };
    }
  }
  return g;
}

function addition(ctx: GraphContext, n: TfjsGraphNode): GValue {
  const d = ctx.draft;
  const op = n.op;
  let a = settle(ctx, n, input(ctx, n, 0));
  let b = settle(ctx, n, input(ctx, n, 1));
  let [ai, bi] = [0, 1];
  if (a.kind === 'const' && b.kind !== 'const' && op !== 'BiasAdd') {
    [a, b, ai, bi] = [b, a, 1, 0];
  }
  if (b.kind === 'const') {
    if (a.kind === 'group' && a.stage === 'linear' && foldable(ctx, a, inputKey(n.input[ai])!)) return addBias(d, n, a, weight(ctx, n, bi));
    throw new Unsupported('it adds a constant to values that are already activated or read elsewhere, which does not scale with them');
  }
  if (a.kind === 'parts' || b.kind === 'parts') throw new Unsupported('it adds a concatenation');
  // A free side takes the other side's channels: the missing size is inferred, not fatal.
  if (a.kind === 'free' && b.kind === 'free') return { kind: 'free', name: n.name, shape: a.shape ?? b.shape };
  if (a.kind === 'free') {
    const other = b as GroupGValue;
    a = materialize(d, { ...a, shape: mergeDims(a.shape, other.shape) }, d.byName.get(other.group)!.size);
  }
  if (b.kind === 'free') {
    const other = a as GroupGValue;
    b = materialize(d, { ...b, shape: mergeDims(b.shape, other.shape) }, d.byName.get(other.group)!.size);
  }
  const ga = a as GroupGValue;
  const gb = b as GroupGValue;
  const size = d.byName.get(ga.group)!.size;
  if (d.byName.get(gb.group)!.size !== size) throw new Unsupported(`it adds values of ${size} and ${d.byName.get(gb.group)!.size} channels (broadcast)`);
  const shape = mergeDims(ga.shape, gb.shape)!;
  newGroup(d, n.name, size, shape);
  for (const x of [ga, gb]) d.connections.push({ kind: 'skip', from: x.group, to: n.name, target: { axis: 0 } });
  d.notes.push(`${n.name}: a residual ${op}; its inputs share their scales`);
  return { kind: 'group', group: n.name, shape, stage: 'linear', owner: n.name };
}

function placeholder(d: GraphDraft, n: TfjsGraphNode): GValue {
  const dims = ((((n.attr.shape as Json | undefined)?.shape as Json | undefined)?.dim as Json[] | undefined) ?? []).map((x) => Number(x.size ?? -1));
  const shape: Dim[] = dims.slice(1).map((x) => (x >= 0 ? x : null));
  const dtype = (n.attr.dtype as Json | undefined)?.type;
  const free: GValue = { kind: 'free', name: n.name, shape };
  // A scalar, an integer input or one of unknown channels: a value readers size for themselves.
  if (!shape.length || shape[shape.length - 1] === null || (dtype !== undefined && dtype !== 'DT_FLOAT')) {
    d.notes.push(`input ${n.name}: shape [${dims.join(', ')}]${dtype && dtype !== 'DT_FLOAT' ? ` of ${dtype}` : ''}; the layers that read it size it`);
    return free;
  }
  return materialize(d, free, shape[shape.length - 1] as number);
}

const WEIGHTED_OPS = new Set(['MatMul', '_FusedMatMul', 'Conv2D', '_FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative']);

/** The node's value, or undefined for a NoOp. */
function node(ctx: GraphContext, n: TfjsGraphNode): GValue | undefined {
  const op = n.op;
  if (op === 'Const') return { kind: 'const', tensor: n.name };
  if (op === 'Placeholder') return placeholder(ctx.draft, n);
  if (op === 'NoOp') return undefined;
  if (WEIGHTED_OPS.has(op)) return weighted(ctx, n);
  const ins = n.input.filter((i) => inputKey(i) !== undefined).map((_, i) => input(ctx, n, i));
  // Nothing computed from the network's units: the value is a network input as well.
  if (!ins.some((v) => (v.kind === 'group' && ctx.draft.byName.get(v.group)?.role !== 'input') || v.kind === 'parts')) {
    const first = ins.find((v) => v.kind !== 'const') as Exclude<GValue, { kind: 'const' }> | undefined;
    return { kind: 'free', name: n.name, shape: ELEMENTWISE.has(op) || ALIAS_OPS.has(op) || ACTIVATION_OPS.has(op) ? first?.shape : undefined };
  }
  const stop = stopReason(op, n.attr);
  if (stop !== undefined) throw new Unsupported(stop);
  if (ALIAS_OPS.has(op) || op === 'Cast' || op === 'Squeeze' || op === 'Reshape') return aliasOp(ctx, n);
  if (op === 'BiasAdd' || op === 'Add' || op === 'AddV2') return addition(ctx, n);
  if (op === 'Mul' || op === 'RealDiv') return multiply(ctx, n);
  if (op === 'ConcatV2' || op === 'Concat') return concat(ctx, n);
  if (op === 'Pad' || op === 'PadV2' || op === 'MirrorPad') return padOp(ctx, n);
  if (op === 'Maximum' || op === 'Minimum') return minMax(ctx, n, (v, a, fold) => activate(ctx, n, v, a, fold));
  if (ACTIVATION_OPS.has(op) || op === 'Prelu') {
    const a = op === 'Prelu' ? preluOf(weight(ctx, n, 1)) : opActivation(op, n.attr);
    if (a.kind === 'bilu' && Array.isArray(a.neg)) {
      const v = input(ctx, n, 0);
      if (v.kind !== 'group' || ctx.draft.byName.get(v.group)!.size !== a.neg.length) throw new Unsupported(`its ${a.neg.length} slopes do not match the channels it reads`);
    }
    return perChannel(ctx, n, (v, fold) => activate(ctx, n, v, a, fold));
  }
  if (op === 'MaxPool' || op === 'AvgPool') return perChannel(ctx, n, (v, fold) => pool(ctx, n, v, fold));
  if (op === 'Mean' || op === 'Max') return reduce(ctx, n);
  if (op === 'ResizeBilinear' || op === 'ResizeNearestNeighbor') return perChannel(ctx, n, (v) => resize(ctx, n, v));
  throw new Unsupported('');
}
