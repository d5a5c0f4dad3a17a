// Float arrays as a balance log carries them: JSON lists (null for NaN/±∞, which JSON lacks) or
// little-endian IEEE floats in base64, the compact form for large layers.

export interface EncodedFloats {
  dtype: 'float32' | 'float64';
  b64: string;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian float32 bytes of `values`, in base64 (what CheckpointCostsResult and the loggers send). */
export function float32Base64(values: ArrayLike<number>): string {
  const f = Float32Array.from(values);
  const bytes = new Uint8Array(f.buffer);
  if (!littleEndian) swapBytes(bytes, 4);
  return Buffer.from(bytes).toString('base64');
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/** Decodes base64 little-endian floats into float64 (costs are summed and divided in float64). */
export function decodeBase64Floats(b64: string, dtype: 'float32' | 'float64'): Float64Array {
  const size = dtype === 'float32' ? 4 : 8;
  const buf = Buffer.from(b64, 'base64');
  if (buf.length % size !== 0) throw new Error(`${dtype} base64 holds ${buf.length} bytes, not a multiple of ${size}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const n = buf.length / size;
  const out = new Float64Array(n);
  if (size === 4) for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  else for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

/** A log's array field (list or base64 object) as float64; throws naming `what` when malformed. */
export function decodeFloats(value: unknown, what: string): Float64Array {
  if (Array.isArray(value)) {
    const out = new Float64Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (v === null) out[i] = NaN;
      else if (typeof v === 'number') out[i] = v;
      else throw new Error(`${what}[${i}] is ${JSON.stringify(v)}, not a number`);
    }
    return out;
  }
  if (value && typeof value === 'object') {
    const { dtype, b64 } = value as Partial<EncodedFloats>;
    if ((dtype === 'float32' || dtype === 'float64') && typeof b64 === 'string') return decodeBase64Floats(b64, dtype);
    throw new Error(`${what} must be a list of numbers or {"dtype": "float32"|"float64", "b64": "…"}`);
  }
  throw new Error(`${what} must be a list of numbers or {"dtype", "b64"}, not ${JSON.stringify(value)}`);
}

/**
 * How a logger writes an array: base64 float32 from `minB64` elements on (or when a value is
 * not finite, which a JSON list could only write as null), else a plain list.
 */
export function encodeFloats(values: ArrayLike<number>, minB64 = 32): number[] | EncodedFloats {
  let finite = true;
  for (let i = 0; i < values.length && finite; i++) finite = Number.isFinite(values[i]);
  if (values.length >= minB64 || !finite) return { dtype: 'float32', b64: float32Base64(values) };
  return Array.from(values, (v) => Math.fround(v));
}

/** A scalar for JSON: null for NaN and infinities. */
export function jsonScalar(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
