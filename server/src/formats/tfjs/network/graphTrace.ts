// Graph-model phase 2: walk the ordered nodes, giving each value a GValue and growing the
// network draft. MatMul and convolutions make groups; a BiasAdd or activation folds into the
// group that produced its input while nothing else reads that value; otherwise an activation
// gets a group of its own joined by a skip, and a residual add is a group with two skips.
import type { Activation } from '../../../engine/activation';
import type { Tensor } from '../../../tensor/tensor';
import type { TensorEntry } from '../../core/checkpoint';
import type { Dim } from '../../keras/geometry';
import type { TfjsGraphNode } from '../read';
import { groupInput, input, newGroup, weight, type GraphContext, type GraphDraft, type GroupGValue, type GValue } from './graphDraft';
import { conv, matmul } from './graphLayers';
import { ACTIVATION_OPS, ALIAS_OPS, attrStrings, inputKey, opActivation, type Json } from './ops';

export interface GraphTrace {
  draft: GraphDraft;
  values: ReadonlyMap<string, GValue>;
  uses: ReadonlyMap<string, number>;
}

export function traceNodes(order: readonly TfjsGraphNode[], uses: ReadonlyMap<string, number>, entries: ReadonlyMap<string, TensorEntry>, leadingNotes: readonly string[]): GraphTrace {
  const draft: GraphDraft = { groups: [], byName: new Map(), connections: [], tensors: new Map(), notes: [...leadingNotes] };
  const ctx: GraphContext = { draft, entries, values: new Map(), uses: new Map(uses) };
  for (const n of order) {
    const v = node(ctx, n);
    if (v) ctx.values.set(n.name, v);
  }
  return { draft, values: ctx.values, uses: ctx.uses };
}

/** The group a fused or separate op may still change: made by `owner`'s chain, read once. */
function foldable(ctx: GraphContext, v: GValue, key: string): v is GroupGValue {
  return v.kind === 'group' && (ctx.uses.get(key) ?? 0) === 1 && ctx.draft.byName.get(v.group)?.role === 'hidden';
}

function addBias(d: GraphDraft, n: TfjsGraphNode, v: GroupGValue, bias: Tensor): GValue {
  const size = d.byName.get(v.group)!.size;
  if (bias.shape.length !== 1 || bias.shape[0] !== size) throw new Error(`node ${n.name}: bias of shape [${bias.shape.join(', ')}] for ${size} channels`);
  d.connections.push({ tensor: bias.name, kind: 'bias', to: v.group, target: { axis: 0 } });
  return { ...v, stage: 'biased', owner: n.name };
}

function activate(ctx: GraphContext, n: TfjsGraphNode, v: GroupGValue, a: Activation, key: string): GValue {
  const d = ctx.draft;
  const g = d.byName.get(v.group)!;
  if (v.stage !== 'activated' && foldable(ctx, v, key)) {
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
  let g = op.includes('MatMul') ? matmul(ctx, n) : conv(ctx, n, op.includes('Depthwise'));
  if (op.startsWith('_Fused') || op.startsWith('FusedDepthwise')) {
    const fused = attrStrings(n.attr, 'fused_ops');
    let arg = 2;
    for (const f of fused) {
      if (f === 'BiasAdd' || f === 'Add' || f === 'AddV2') g = addBias(ctx.draft, n, g, weight(ctx, n, arg++)) as typeof g;
      else if (ACTIVATION_OPS.has(f)) {
        const grp = ctx.draft.byName.get(g.group)!;
        grp.activation = opActivation(f, n.attr);
        grp.activationSource = `${n.name} (${op} fused ${f})`;
        g = { ...g, stage: 'activated' };
      } else throw new Error(`node ${n.name}: fused op ${f} is not supported`);
    }
  }
  return g;
}

function addition(ctx: GraphContext, n: TfjsGraphNode): GValue {
  const d = ctx.draft;
  const op = n.op;
  const a = input(ctx, n, 0);
  const b = input(ctx, n, 1);
  const key = inputKey(n.input[0])!;
  if (a.kind === 'group' && b.kind === 'const' && a.stage === 'linear' && foldable(ctx, a, key)) {
    return addBias(d, n, a, weight(ctx, n, 1));
  }
  if (op !== 'BiasAdd' && a.kind === 'group' && b.kind === 'group') {
    const size = d.byName.get(a.group)!.size;
    if (d.byName.get(b.group)!.size !== size) throw new Error(`node ${n.name}: adds values of ${size} and ${d.byName.get(b.group)!.size} channels`);
    newGroup(d, n.name, size, a.shape);
    for (const x of [a, b]) d.connections.push({ kind: 'skip', from: x.group, to: n.name, target: { axis: 0 } });
    d.notes.push(`${n.name}: a residual ${op}; its inputs share their scales`);
    return { kind: 'group', group: n.name, shape: a.shape, stage: 'linear', owner: n.name };
  }
  throw new Error(`node ${n.name} (${op}): this form of addition is not supported`);
}

function placeholder(d: GraphDraft, n: TfjsGraphNode): GValue {
  const dims = ((((n.attr.shape as Json | undefined)?.shape as Json | undefined)?.dim as Json[] | undefined) ?? []).map((x) => Number(x.size ?? -1));
  const shape: Dim[] = dims.slice(1).map((x) => (x >= 0 ? x : null));
  if (!shape.length || shape[shape.length - 1] === null) throw new Error(`input ${n.name} has no known channel count (shape [${dims.join(', ')}])`);
  const g = newGroup(d, n.name, shape[shape.length - 1] as number, shape);
  g.role = 'input';
  delete g.activation;
  return { kind: 'group', group: n.name, shape, stage: 'activated', owner: n.name };
}

const WEIGHTED_OPS = new Set(['MatMul', '_FusedMatMul', 'Conv2D', '_FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative']);

/** The node's value, or undefined for a NoOp. */
function node(ctx: GraphContext, n: TfjsGraphNode): GValue | undefined {
  const op = n.op;
  if (op === 'Const') return { kind: 'const', tensor: n.name };
  if (op === 'Placeholder') return placeholder(ctx.draft, n);
  if (ALIAS_OPS.has(op)) {
    const v = input(ctx, n, 0);
    const k = inputKey(n.input[0])!;
    // Passing the value on: its readers are this node's readers.
    ctx.uses.set(k, (ctx.uses.get(k) ?? 0) - 1 + (ctx.uses.get(n.name) ?? 0));
    return v;
  }
  if (WEIGHTED_OPS.has(op)) return weighted(ctx, n);
  if (op === 'BiasAdd' || op === 'Add' || op === 'AddV2') return addition(ctx, n);
  if (ACTIVATION_OPS.has(op)) return activate(ctx, n, groupInput(ctx, n, 0), opActivation(op, n.attr), inputKey(n.input[0])!);
  if (op === 'NoOp') return undefined;
  throw new Error(`node ${n.name}: op ${op} is not supported by the graph-model builder`);
}
