// The network as the layer walk grows it, and the moves every layer translator shares: making
// groups, folding per-channel ops into the group that produced their input, or carrying a value
// on in a group of its own joined by a skip connection (which ties the two scales).
import { identity } from '../../../engine/activation';
import type { Connection, UnitGroup } from '../../../engine/network';
import type { KerasLayer } from '../config';
import { known, type Dim } from '../geometry';
import { opaqueNote } from './notes';
import type { TensorTable, WeightIndex } from './weights';
import { channelsOf, LINEAR, POOLED, Unsupported, type FreeValue, type GroupValue, type Slot, type Stage, type Value } from './values';

/** What the walk has built so far. Owned by the walk (trace.ts); translators extend it. */
export interface NetworkDraft {
  groups: UnitGroup[];
  slots: Map<string, Slot>;
  connections: Connection[];
  tensors: TensorTable;
  /** Notes on layers left opaque, in walk order. */
  notes: string[];
  /** Why forward passes of the network are not exact. */
  caveats: Set<string>;
}

/** What a layer translator works with: the draft it extends and the read-only facts of the model. */
export interface TraceContext {
  draft: NetworkDraft;
  weights: WeightIndex;
  uses: ReadonlyMap<string, number>;
}

export function emptyDraft(): NetworkDraft {
  return { groups: [], slots: new Map(), connections: [], tensors: new Map(), notes: [], caveats: new Set() };
}

export function addGroup(d: NetworkDraft, group: UnitGroup, layer: string, stage: Stage): Slot {
  if (d.slots.has(group.name)) throw new Error(`two groups would be named "${group.name}"`);
  const slot: Slot = { group, stage, head: layer, visible: [] };
  d.groups.push(group);
  d.slots.set(group.name, slot);
  return slot;
}

export function slotOf(d: NetworkDraft, name: string): Slot {
  const s = d.slots.get(name);
  if (!s) throw new Error(`internal: no group ${name}`);
  return s;
}

export function sizeOf(d: NetworkDraft, group: string): number {
  return slotOf(d, group).group.size;
}

export function inputValue(d: NetworkDraft, layer: KerasLayer): Value {
  const shape = layer.inputShape;
  const channels = shape?.[shape.length - 1];
  if (!shape || shape.length === 0 || channels === null || channels === undefined) return { kind: 'free', name: layer.name, shape };
  inputGroup(d, layer.name, channels, shape);
  return { kind: 'group', group: layer.name, from: layer.name, shape, flat: false };
}

function inputGroup(d: NetworkDraft, name: string, size: number, shape: Dim[] | undefined): string {
  const existing = d.slots.get(name);
  if (existing) {
    if (existing.group.size !== size) throw new Error(`input ${name} is read as ${existing.group.size} and as ${size} channels`);
    return name;
  }
  const group: UnitGroup = { name, size, role: 'input' };
  const spatial = shape?.slice(0, -1) ?? [];
  if (spatial.length && known(spatial)) group.spatial = spatial;
  addGroup(d, group, name, POOLED);
  return name;
}

/** A free value as the network input it stands for, sized by what reads it. */
export function materialize(d: NetworkDraft, v: FreeValue, channels?: number): GroupValue {
  const size = channels ?? channelsOf(v);
  if (size === null || size === undefined) throw new Unsupported(`the size of ${v.name} is unknown`);
  const shape = v.shape && v.shape[v.shape.length - 1] === size ? v.shape : [size];
  inputGroup(d, v.name, size, shape);
  return { kind: 'group', group: v.name, from: v.name, shape, flat: false };
}

export function asGroup(d: NetworkDraft, v: Value, what: string): GroupValue {
  if (v.kind === 'free') return materialize(d, v);
  if (v.kind === 'parts') throw new Unsupported(`${what} over a concatenation is not supported`);
  if (v.pad) throw new Unsupported(`${what} of zero-padded values is not supported`);
  return v;
}

/** The group a per-channel op can fold into, when nothing else reads its current output. */
export function foldable(ctx: TraceContext, v: GroupValue, maxStage: Stage): Slot | undefined {
  const slot = slotOf(ctx.draft, v.group);
  if (slot.group.role === 'input' || slot.stage > maxStage) return undefined;
  return slot.head === v.from && ctx.uses.get(v.from) === 1 ? slot : undefined;
}

/** A new identity group that carries `v` on (a skip connection ties its scale to the source). */
export function passGroup(d: NetworkDraft, name: string, v: GroupValue, layer: string): Slot {
  const src = slotOf(d, v.group).group;
  const group: UnitGroup = { name, size: src.size, role: 'hidden', activation: identity(), activationSource: `${layer} (passes values on)` };
  if (src.spatial) group.spatial = src.spatial;
  d.connections.push({ kind: 'skip', from: src.name, to: name, target: { axis: 0 } });
  return addGroup(d, group, layer, LINEAR);
}

/** The value under the layer's name; the layer becomes the group's head when it is the only reader. */
export function alias(ctx: TraceContext, layer: KerasLayer, v: Value): Value {
  if (v.kind !== 'group') return v;
  const slot = slotOf(ctx.draft, v.group);
  if (slot.head === v.from && ctx.uses.get(v.from) === 1) slot.head = layer.name;
  return { ...v, from: layer.name };
}

/** A layer the network does not model: the units feeding it stay fixed, its output is an input. */
export function opaque(d: NetworkDraft, layer: KerasLayer, inputs: Value[], reason: string): Value {
  const why = `feeds ${layer.name} (${layer.className}): ${reason}`;
  for (const v of inputs) {
    const names = v.kind === 'group' ? [v.group] : v.kind === 'parts' ? v.parts.map((p) => p.group) : [];
    for (const n of names) {
      const slot = slotOf(d, n);
      if (!slot.visible.some((x) => x.reason === why)) slot.visible.push({ reason: why });
    }
  }
  d.notes.push(opaqueNote(layer, reason));
  return { kind: 'free', name: layer.name };
}
