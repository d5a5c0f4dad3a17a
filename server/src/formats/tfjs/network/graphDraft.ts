// The graph-model network as the node walk grows it, and the reads every node translator shares:
// a node's input values, its constant weights (loaded once, in the order nodes reach them).
import { identity } from '../../../engine/activation';
import type { Connection, UnitGroup } from '../../../engine/network';
import type { Tensor } from '../../../tensor/tensor';
import { isFloatDType, loadTensor, type TensorEntry } from '../../core/checkpoint';
import { known, type Dim } from '../../keras/geometry';
import type { TfjsGraphNode } from '../read';
import { inputKey } from './ops';

/** Zero (or mirror) padding that waits on a value until a convolution folds it into its own. */
export interface Padding {
  before: number[];
  after: number[];
  /** MirrorPad: the scale passes (values are copied), but forward passes pad with zeros. */
  mirror: boolean;
}

export type Stage = 'linear' | 'biased' | 'activated' | 'pooled';

/** A graph value as the builder sees it; shapes without the batch axis, channels last. */
export type GValue =
  | { kind: 'group'; group: string; shape: Dim[]; stage: Stage; owner: string; pad?: Padding }
  | { kind: 'const'; tensor: string }
  /** A concatenation along the channels: its readers connect to each part. */
  | { kind: 'parts'; parts: { group: string; channels: number }[]; shape: Dim[] }
  /** A value the network does not model (an input that is not a float map, a barrier's output). */
  | { kind: 'free'; name: string; shape?: Dim[] };

export type GroupGValue = Extract<GValue, { kind: 'group' }>;
export type PartsGValue = Extract<GValue, { kind: 'parts' }>;
export type FreeGValue = Extract<GValue, { kind: 'free' }>;

/** A node the builder does not model: it becomes a barrier instead of failing the whole build. */
export class Unsupported extends Error {}

export interface GraphDraft {
  groups: UnitGroup[];
  byName: Map<string, UnitGroup>;
  connections: Connection[];
  /** Loaded weights, in load order: the network's tensor list. */
  tensors: Map<string, Tensor>;
  notes: string[];
  /** Units held fixed by barriers, by group. */
  visible: Map<string, { reason: string }[]>;
  /** Why forward passes of the network are not exact. */
  caveats: Set<string>;
}

/** What a node translator works with: the draft, the weights, the values so far and their readers. */
export interface GraphContext {
  draft: GraphDraft;
  entries: ReadonlyMap<string, TensorEntry>;
  /** Small int32 constants (paddings, axes, sizes) by tensor name. */
  ints: Readonly<Record<string, number[]>>;
  values: Map<string, GValue>;
  /** Readers of each value; an alias op hands its readers on to its input. */
  uses: Map<string, number>;
}

export function input(ctx: GraphContext, n: TfjsGraphNode, i: number): GValue {
  const k = inputKey(n.input[i] ?? '');
  const v = k ? ctx.values.get(k) : undefined;
  if (!v) throw new Unsupported(`its input ${n.input[i] ?? i} comes from a loop or a node the builder does not follow`);
  return v;
}

export function weight(ctx: GraphContext, n: TfjsGraphNode, i: number): Tensor {
  const v = input(ctx, n, i);
  if (v.kind !== 'const') throw new Unsupported(`its input ${i} is computed, not a stored weight`);
  const entry = ctx.entries.get(v.tensor);
  if (!entry) throw new Error(`node ${n.name}: the weights manifest has no ${v.tensor}`);
  if (!isFloatDType(entry.dtype)) throw new Unsupported(`its weight ${v.tensor} is ${entry.dtype}`);
  let t = ctx.draft.tensors.get(v.tensor);
  if (!t) {
    t = loadTensor(entry);
    ctx.draft.tensors.set(v.tensor, t);
  }
  return t;
}

/** The values of a constant input, int or float (a float one is not listed as a network tensor). */
export function constValues(ctx: GraphContext, n: TfjsGraphNode, i: number): number[] | undefined {
  const v = input(ctx, n, i);
  if (v.kind !== 'const') return undefined;
  const ints = ctx.ints[v.tensor];
  if (ints) return ints;
  const entry = ctx.entries.get(v.tensor);
  if (!entry || !isFloatDType(entry.dtype) || entry.shape.reduce((a, b) => a * b, 1) > 1 << 16) return undefined;
  return Array.from(loadTensor(entry).data as ArrayLike<number>, Number);
}

export function newGroup(d: GraphDraft, name: string, size: number, shape: readonly Dim[]): UnitGroup {
  const g: UnitGroup = { name, size, role: 'hidden', activation: identity() };
  const spatial = shape.slice(0, -1);
  if (spatial.length && known(spatial)) g.spatial = spatial;
  else if (spatial.length) d.caveats.add(`the spatial size at ${name} is unknown`);
  d.groups.push(g);
  d.byName.set(name, g);
  return g;
}

/** A new identity group that carries `v` on (a skip connection ties its scale to the source). */
export function passGroup(d: GraphDraft, n: TfjsGraphNode, name: string, v: GroupGValue, shape: readonly Dim[]): GroupGValue {
  const src = d.byName.get(v.group)!;
  const g = newGroup(d, name, src.size, shape);
  g.activationSource = `${n.name} (${n.op}, passes values on)`;
  d.connections.push({ kind: 'skip', from: src.name, to: name, target: { axis: 0 } });
  return { kind: 'group', group: name, shape: [...shape], stage: 'linear', owner: n.name };
}

/** A free value as the network input it stands for, sized by what reads it. */
export function materialize(d: GraphDraft, v: FreeGValue, channels?: number): GroupGValue {
  const size = channels ?? v.shape?.[v.shape.length - 1] ?? null;
  if (size === null || size === undefined) throw new Unsupported(`the channel count of ${v.name} is unknown`);
  const shape: Dim[] = v.shape && v.shape.length ? [...v.shape.slice(0, -1), size] : [size];
  const existing = d.byName.get(v.name);
  if (existing) {
    if (existing.size !== size) throw new Unsupported(`${v.name} is read as ${existing.size} and as ${size} channels`);
  } else {
    const g = newGroup(d, v.name, size, shape);
    g.role = 'input';
    delete g.activation;
  }
  return { kind: 'group', group: v.name, shape, stage: 'pooled', owner: v.name };
}

/** Every group a value is made of (none for constants and free values). */
export function groupsOf(v: GValue): string[] {
  return v.kind === 'group' ? [v.group] : v.kind === 'parts' ? v.parts.map((p) => p.group) : [];
}

/** A node the network does not model: the hidden units feeding it stay fixed, its output is free. */
export function barrier(ctx: GraphContext, n: TfjsGraphNode, reason: string, shape?: Dim[]): GValue {
  const d = ctx.draft;
  const why = reason ? `feeds ${n.op} (node '${n.name}'): ${reason}` : `feeds ${n.op} (node '${n.name}'), which this tool does not model`;
  let fixed = 0;
  for (const raw of n.input) {
    const k = inputKey(raw);
    const v = k ? ctx.values.get(k) : undefined;
    if (!v) continue;
    for (const name of groupsOf(v)) {
      if (d.byName.get(name)?.role !== 'hidden') continue;
      const list = d.visible.get(name) ?? [];
      if (!list.some((x) => x.reason === why)) list.push({ reason: why });
      d.visible.set(name, list);
      fixed++;
    }
  }
  if (fixed) d.notes.push(`${n.name} (${n.op}): ${reason || 'not modelled'}; the units feeding it stay fixed and its output counts as a network input`);
  return { kind: 'free', name: n.name, shape };
}

/** The group a fused or separate op may still change: read once (by this node), hidden. */
export function foldable(ctx: GraphContext, v: GValue, key: string): v is GroupGValue {
  return v.kind === 'group' && (ctx.uses.get(key) ?? 0) === 1 && ctx.draft.byName.get(v.group)?.role === 'hidden';
}
