// What the analysis worker hands the main thread about one checkpoint. Per-unit figures are
// columns of typed arrays, so that a model with a million units crosses the thread boundary
// as a few transferred buffers rather than a million cloned objects.
import type { LayerReport } from '../engine/analyze';
import type { FileStamp } from '../formats/core/checkpoint';

export const UNIT_STATUSES = ['balanceable', 'visible', 'fixed', 'dead'] as const;
export type UnitStatusName = (typeof UNIT_STATUSES)[number];

/** One value per unit of a layer; NaN where a figure does not apply. */
export interface UnitColumns {
  in: Float64Array;
  out: Float64Array;
  /** |IN − OUT| / (IN + OUT) of the unit's scale variable; NaN for units that are not balanceable. */
  rel: Float64Array;
  lambda: Float64Array;
  deltaR: Float64Array;
  /** Index into UNIT_STATUSES. */
  status: Uint8Array;
  /** Index into LayerAnalysis.reasonTexts, or -1. */
  reason: Int32Array;
}

/** Where a layer's units live in one tensor: which axis, and how indices map to units. */
export interface TensorSlot {
  connection: string;
  tensor: string;
  dtype: string;
  shape: number[];
  axis: number;
  start: number;
  length: number;
  /** Indices per unit along the axis (a flatten spans several). */
  inner: number;
  select: { axis: number; index: number }[];
  kind: string;
  /** The group at the other end (or "bias"). */
  other: string;
}

/** The engine's layer report, with its units as columns (transferable) instead of objects. */
export interface LayerAnalysis extends Omit<LayerReport, 'unbalanced' | 'unitReports'> {
  reasonTexts: string[];
  columns: UnitColumns;
  /**
   * Machine epsilon of the coarsest dtype the layer's weights are stored in: rounding the scaled
   * weights back to it leaves relative deficits of about this size, which no fix can remove.
   */
  roundoff: number;
  /** Balancing the whole layer with one λ (undefined where it has no optimum). */
  tied?: { lambda: number; deltaR: number };
  /** Balancing each unit in turn: the sum of the units' ΔR, exact when no edge joins two units of the layer. */
  eachDeltaR: number;
  eachExact: boolean;
  incoming: TensorSlot[];
  outgoing: TensorSlot[];
}

export interface CheckpointAnalysis {
  path: string;
  format: string;
  formatDescription: string;
  /** Every file the checkpoint spans, as they were when read. */
  files: FileStamp[];
  network: string;
  regularizer: string;
  p: number;
  activation: string;
  parameters: number;
  units: number;
  balanceable: number;
  dead: number;
  R: number;
  totalDeficit: number;
  maxRelativeDeficit: number;
  notes: string[];
  layers: LayerAnalysis[];
  durationMs: number;
}

export type FailureKind = 'unknown-format' | 'unreadable' | 'changed' | 'cancelled' | 'crashed';

export interface JobFailure {
  kind: FailureKind;
  /** The whole message, `path: problem` for file errors. */
  message: string;
  /** For file errors: the file, and the problem without it (what a diagnostic on that file says). */
  path?: string;
  problem?: string;
}

/** Buffers to transfer (not copy) when posting an analysis. */
export function transferables(a: CheckpointAnalysis): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const l of a.layers) {
    const c = l.columns;
    for (const arr of [c.in, c.out, c.rel, c.lambda, c.deltaR, c.status, c.reason]) out.push(arr.buffer as ArrayBuffer);
  }
  return out;
}
