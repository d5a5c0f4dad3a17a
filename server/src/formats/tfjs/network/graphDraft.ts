// The graph-model network as the node walk grows it, and the reads every node translator shares:
// a node's input values, its constant weights (loaded once, in the order nodes reach them).
import { identity } from '../../../engine/activation';
import type { Connection, UnitGroup } from '../../../engine/network';
import type { Tensor } from '../../../tensor/tensor';
import { isFloatDType, loadTensor, type TensorEntry } from '../../core/checkpoint';
import { known, type Dim } from '../../keras/geometry';
import type { TfjsGraphNode } from '../read';
import { inputKey } from './ops';

/** A graph value as the builder sees it; shapes without the batch axis, channels last. */
export type GValue =
  | { kind: 'group'; group: string; shape: Dim[]; stage: 'linear' | 'biased' | 'activated'; owner: string }
  | { kind: 'const'; tensor: string };

export type GroupGValue = Extract<GValue, { kind: 'group' }>;

export interface GraphDraft {
  groups: UnitGroup[];
  byName: Map<string, UnitGroup>;
  connections: Connection[];
  /** Loaded weights, in load order: the network's tensor list. */
  tensors: Map<string, Tensor>;
  notes: string[];
}

/** What a node translator works with: the draft, the weights, the values so far and their readers. */
export interface GraphContext {
  draft: GraphDraft;
  entries: ReadonlyMap<string, TensorEntry>;
  values: Map<string, GValue>;
  /** Readers of each value; an alias op hands its readers on to its input. */
  uses: Map<string, number>;
}

export function input(ctx: GraphContext, n: TfjsGraphNode, i: number): GValue {
  const k = inputKey(n.input[i] ?? '');
  const v = k ? ctx.values.get(k) : undefined;
  if (!v) throw new Error(`node ${n.name} (${n.op}): input ${i} (${n.input[i]}) has no value this builder understands`);
  return v;
}

export function groupInput(ctx: GraphContext, n: TfjsGraphNode, i: number): GroupGValue {
  const v = input(ctx, n, i);
  if (v.kind !== 'group') throw new Error(`node ${n.name} (${n.op}): input ${i} is a constant, not a computed value`);
  return v;
}

export function weight(ctx: GraphContext, n: TfjsGraphNode, i: number): Tensor {
  const v = input(ctx, n, i);
  if (v.kind !== 'const') throw new Error(`node ${n.name} (${n.op}): input ${i} is not a constant weight`);
  const entry = ctx.entries.get(v.tensor);
  if (!entry) throw new Error(`node ${n.name}: the weights manifest has no ${v.tensor}`);
  if (!isFloatDType(entry.dtype)) throw new Error(`node ${n.name}: weight ${v.tensor} is ${entry.dtype}`);
  let t = ctx.draft.tensors.get(v.tensor);
  if (!t) {
    t = loadTensor(entry);
    ctx.draft.tensors.set(v.tensor, t);
  }
  return t;
}

export function newGroup(d: GraphDraft, name: string, size: number, shape: Dim[]): UnitGroup {
  const g: UnitGroup = { name, size, role: 'hidden', activation: identity() };
  const spatial = shape.slice(0, -1);
  if (spatial.length && known(spatial)) g.spatial = spatial;
  else if (spatial.length) throw new Error(`the spatial size at node ${name} is unknown (state the input's shape)`);
  d.groups.push(g);
  d.byName.set(name, g);
  return g;
}
