// Which graph values are weights the builder may rescale: constants made of stored float tensors.
import { isFloatDType } from '../../core/checkpoint';
import type { ConstView, GraphView } from '../graphView';

/** The stored float tensors a value is (with `rank` axes when given), or undefined. */
export function weightView(view: GraphView, value: string | undefined, rank?: number): ConstView | undefined {
  if (!value) return undefined;
  const v = view.constView(value);
  if (!v || (rank !== undefined && v.shape.length !== rank)) return undefined;
  return v.pieces.every((p) => isFloatDType(p.entry.dtype)) ? v : undefined;
}
