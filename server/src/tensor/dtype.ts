// Weight element types and the conversions between their stored bits and float64.
// Costs are always accumulated in float64; weights are written back in their own dtype.

export type DType = 'float64' | 'float32' | 'float16' | 'bfloat16';

export const DTYPE_BYTES: Record<DType, number> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
};

/** Machine epsilon of each dtype: the relative rounding a value takes when stored in it. */
export const DTYPE_EPSILON: Record<DType, number> = { float64: 2 ** -52, float32: 2 ** -23, float16: 2 ** -10, bfloat16: 2 ** -7 };

/** Storage of a tensor's elements: half types keep their raw 16-bit patterns. */
export type TensorData = Float64Array | Float32Array | Uint16Array;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

// A table of all 65536 half values makes decoding a lookup (large checkpoints are
// decoded element by element in the cost passes).
let halfTable: Float32Array | undefined;
function halfToFloatSlow(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
export function float16Table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = halfToFloatSlow(i);
  }
  return halfTable;
}

export function float16ToNumber(h: number): number {
  return float16Table()[h & 0xffff];
}

/** Round-to-nearest-even conversion of a number to IEEE binary16 bits. */
export function numberToFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  // Rebias from 127 to 15.
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

export function bfloat16ToNumber(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** Round-to-nearest-even conversion to bfloat16 bits (the upper half of a float32). */
export function numberToBfloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** Buffers at least this large live in shared memory, where compute threads can read them. */
export const SHARED_MIN_BYTES = 1 << 24;

/** An ArrayBuffer for `bytes` bytes: shared when large. */
export function backingBuffer(bytes: number): ArrayBuffer | SharedArrayBuffer {
  return bytes >= SHARED_MIN_BYTES ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
}

export function allocate(dtype: DType, length: number): TensorData {
  const buf = backingBuffer(length * DTYPE_BYTES[dtype]);
  switch (dtype) {
    case 'float64':
      return new Float64Array(buf);
    case 'float32':
      return new Float32Array(buf);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buf);
  }
}

/** Decodes stored elements to float64. */
export function toFloat64(dtype: DType, data: TensorData): Float64Array {
  const out = new Float64Array(data.length);
  if (dtype === 'float16') {
    const t = float16Table();
    for (let i = 0; i < data.length; i++) out[i] = t[data[i]];
  } else if (dtype === 'bfloat16') {
    for (let i = 0; i < data.length; i++) out[i] = bfloat16ToNumber(data[i]);
  } else {
    out.set(data);
  }
  return out;
}

/** Encodes float64 values into a new array of the given dtype (rounding to nearest). */
export function fromFloat64(dtype: DType, values: Float64Array): TensorData {
  const out = allocate(dtype, values.length);
  if (dtype === 'float16') {
    for (let i = 0; i < values.length; i++) out[i] = numberToFloat16(values[i]);
  } else if (dtype === 'bfloat16') {
    for (let i = 0; i < values.length; i++) out[i] = numberToBfloat16(values[i]);
  } else {
    out.set(values);
  }
  return out;
}

/** A reader of element i as float64, for loops that must not decode a whole tensor. */
export function elementReader(dtype: DType, data: TensorData): (i: number) => number {
  if (dtype === 'float16') {
    const t = float16Table();
    return (i) => t[data[i]];
  }
  if (dtype === 'bfloat16') return (i) => bfloat16ToNumber(data[i]);
  return (i) => data[i];
}
