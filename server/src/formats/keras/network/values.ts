// The vocabulary the Keras network builder's phases share: what a Keras tensor is to the
// builder, and how far a unit group's output has gone down the engine's fixed order.
import type { UnitGroup } from '../../../engine/network';
import type { KerasLayer } from '../config';
import type { Dim } from '../geometry';

/** How far a group's output has gone down the engine's fixed order. */
export const LINEAR = 0;
export const NORMALIZED = 1;
export const ACTIVATED = 2;
export const POOLED = 3;
export type Stage = typeof LINEAR | typeof NORMALIZED | typeof ACTIVATED | typeof POOLED;

export interface Slot {
  group: UnitGroup;
  stage: Stage;
  /** The Keras layer whose output the group's values now are; only it may fold further ops in. */
  head: string;
  visible: { reason: string }[];
}

export interface Padding {
  before: number[];
  after: number[];
}

/** A Keras tensor as the builder sees it. Shapes have no batch axis and end with channels. */
export type Value =
  | { kind: 'group'; group: string; from: string; shape: Dim[]; flat: boolean; pad?: Padding }
  | { kind: 'parts'; parts: { group: string; channels: number }[]; shape: Dim[] }
  | { kind: 'free'; name: string; shape?: Dim[] };

export type GroupValue = Extract<Value, { kind: 'group' }>;
export type FreeValue = Extract<Value, { kind: 'free' }>;

/** A layer the builder cannot model; it becomes opaque instead of failing the whole build. */
export class Unsupported extends Error {}

export function product(dims: readonly Dim[]): Dim {
  let n = 1;
  for (const d of dims) {
    if (d === null) return null;
    n *= d;
  }
  return n;
}

export function channelsOf(v: Value): Dim {
  if (v.kind === 'free') return v.shape ? v.shape[v.shape.length - 1] ?? null : null;
  return v.shape[v.shape.length - 1] ?? null;
}

export function sameDims(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === null || b[i] === null || d === b[i]);
}

/** Whether the layer's `axis` is the channel axis of a tensor of that rank. */
export function channelAxisOk(layer: KerasLayer, rank: number): boolean {
  const axis = Array.isArray(layer.config.axis) && layer.config.axis.length === 1 ? layer.config.axis[0] : layer.config.axis ?? -1;
  return axis === -1 || axis === rank;
}
