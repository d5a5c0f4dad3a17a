// A dense tensor held in memory, row-major, in its stored dtype.
import { DType, TensorData, allocate, fromFloat64, toFloat64 } from './dtype';

export interface Tensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides, in elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function makeTensor(name: string, dtype: DType, shape: readonly number[], values?: ArrayLike<number>): Tensor {
  const n = numel(shape);
  if (values && values.length !== n) {
    throw new Error(`tensor ${name}: ${values.length} values for shape [${shape.join(', ')}] (${n} elements)`);
  }
  const data = values ? fromFloat64(dtype, Float64Array.from(values)) : allocate(dtype, n);
  return { name, dtype, shape: [...shape], data };
}

export function tensorValues(t: Tensor): Float64Array {
  return toFloat64(t.dtype, t.data);
}
