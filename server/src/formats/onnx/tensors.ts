// From TensorProto records to checkpoint entries: where each tensor's elements are, in which
// encoding, checked against the file (sizes, bounds, external files) before anything trusts them.
import { statSync } from 'node:fs';
import { dirname, isAbsolute, normalize, resolve } from 'node:path';
import { isFloatDType, readRange, type TensorEntry } from '../core/checkpoint';
import type { DType } from '../../tensor/dtype';
import { bfloat16ToNumber, float16ToNumber } from '../../tensor/dtype';
import { onnxType, typedFieldOf, ONNX_BFLOAT16, ONNX_FLOAT16 } from './dtypes';
import { readSegments, type ModelRecord, type TensorRecord } from './proto';
import { ByteSource } from './wire';
import { FileError, fail } from '../../errors/fileError';

/** float_data/double_data split over several fields or unpacked: decoded by the reader. */
export const ENC_TYPED_FLOATS = 'onnx-typed-floats';
/** float16/bfloat16 bit patterns stored as int32_data varints: decoded by the reader. */
export const ENC_INT32_HALF = 'onnx-int32-half';
/** Integer or other non-float values in typed fields (shapes, indices): not decoded into the entry. */
export const ENC_TYPED_OTHER = 'onnx-typed';

/** Non-raw tensors above this many elements are refused rather than decoded into memory. */
const MAX_DECODED = 1 << 26;

export interface ExternalRef {
  /** The `location` string as written in the model, and the resolved file. */
  location: string;
  file: string;
  offset: number;
  length: number;
}


export function elementCount(path: string, t: TensorRecord, label: string): number {
  let n = 1;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 0) fail(path, `tensor ${label} has an invalid dimension ${d} in [${t.dims.join(', ')}]`);
    n *= d;
    if (!Number.isSafeInteger(n)) fail(path, `tensor ${label} has absurd dimensions [${t.dims.join(', ')}]`);
  }
  return n;
}

function intField(path: string, label: string, key: string, text: string): number {
  if (!/^\d+$/.test(text)) fail(path, `tensor ${label}: external_data ${key} "${text}" is not a non-negative integer`);
  const v = Number(text);
  if (!Number.isSafeInteger(v)) fail(path, `tensor ${label}: external_data ${key} ${text} is too large`);
  return v;
}

/** The external file of a tensor with data_location = EXTERNAL, checked to exist and hold the bytes. */
export function externalRef(model: ModelRecord, t: TensorRecord, label: string, expectBytes: number | undefined): ExternalRef {
  const path = model.path;
  const get = (k: string) => t.external.find((e) => e.key === k)?.value;
  const location = get('location');
  if (!location) fail(path, `tensor ${label} is stored externally but names no location`);
  if (isAbsolute(location) || normalize(location).split(/[\\/]/).includes('..')) {
    fail(path, `tensor ${label}: external data location "${location}" leaves the model's folder; refused`);
  }
  const file = resolve(dirname(path), location);
  const offsetText = get('offset');
  const lengthText = get('length');
  const offset = offsetText === undefined ? 0 : intField(path, label, 'offset', offsetText);
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    fail(path, `tensor ${label}: external data file ${file} is missing`);
  }
  const length = lengthText === undefined ? (expectBytes ?? size - offset) : intField(path, label, 'length', lengthText);
  if (expectBytes !== undefined && length !== expectBytes) {
    fail(path, `tensor ${label} has shape [${t.dims.join(', ')}] (${expectBytes} bytes) but its external data is ${length} bytes`);
  }
  if (offset + length > size) fail(path, `tensor ${label}: external data ${file} has ${size} bytes, but the tensor needs bytes ${offset}..${offset + length}`);
  return { location, file, offset, length };
}

function readOnlyReasonOf(code: number): string | undefined {
  const ty = onnxType(code)!;
  if (isFloatDType(ty.stored)) return undefined;
  if (code === 2 || code === 3) return `${ty.name} tensors are quantized weights, which are never written back`;
  return `${ty.name} tensors are not float weights; only float tensors are rewritten`;
}

/** Checks a record against the file and describes where its elements are. */
export function entryOf(model: ModelRecord, src: ByteSource, t: TensorRecord, name: string): TensorEntry {
  const path = model.path;
  const label = `${name} (${t.origin})`;
  const ty = onnxType(t.dataType);
  if (!ty) fail(path, `tensor ${label} has unknown data_type ${t.dataType}`);
  const n = elementCount(path, t, label);
  const expectBytes = ty.bytes > 0 ? Math.ceil(n * ty.bytes) : undefined;
  // Every element takes at least a bit of the file (or of an external one): more is a lie.
  const room = (t.dataLocation === 1 ? Number.MAX_SAFE_INTEGER : model.size) * 8;
  if (n > room) fail(path, `tensor ${label} claims ${n} elements ([${t.dims.join(', ')}]), more than the file can hold`);
  const base = { name, dtype: ty.stored, shape: [...t.dims], file: path, readOnlyReason: readOnlyReasonOf(t.dataType) };

  if (t.dataLocation === 1 || (t.external.length > 0 && !t.raw)) {
    const ext = externalRef(model, t, label, expectBytes);
    return { ...base, file: ext.file, offset: ext.offset, byteLength: ext.length };
  }
  if (t.dataLocation !== 0) fail(path, `tensor ${label} has unknown data_location ${t.dataLocation}`);
  if (t.raw) {
    const len = t.raw.end - t.raw.start;
    if (expectBytes !== undefined && len !== expectBytes) {
      fail(path, `tensor ${label} has shape [${t.dims.join(', ')}] (${expectBytes} bytes of ${ty.name}) but raw_data holds ${len} bytes`);
    }
    return { ...base, offset: t.raw.start, byteLength: len };
  }
  const field = typedFieldOf(t.dataType);
  const segs = t.typed.get(field) ?? [];
  if (segs.length === 0) {
    if (n === 0) return { ...base, offset: 0, byteLength: 0 };
    fail(path, `tensor ${label} has shape [${t.dims.join(', ')}] but no data`);
  }
  if (n > MAX_DECODED) fail(path, `tensor ${label} stores ${n} elements in typed fields; too many to decode`);
  const first = segs[0];
  const total = segs.reduce((s, g) => s + (g.end - g.start), 0);
  if (isFloatDType(ty.stored) && (field === 4 || field === 10)) {
    const size = field === 4 ? 4 : 8;
    // One packed run of little-endian floats is exactly the raw layout: no decoding needed.
    if (segs.length === 1 && first.packed) {
      if (total !== n * size) fail(path, `tensor ${label} has shape [${t.dims.join(', ')}] (${n} elements) but ${total / size} values`);
      return { ...base, offset: first.start, byteLength: total };
    }
    const values = readSegments(src, segs, field);
    if (values.length !== n) fail(path, `tensor ${label} has shape [${t.dims.join(', ')}] (${n} elements) but ${values.length} values`);
    const dtype = ty.stored as DType;
    const data = dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
    return { ...base, offset: first.start, byteLength: total, encoding: ENC_TYPED_FLOATS, decoded: { name, dtype, shape: [...t.dims], data } };
  }
  if (t.dataType === ONNX_FLOAT16 || t.dataType === ONNX_BFLOAT16) {
    const values = readSegments(src, segs, field);
    if (values.length !== n) fail(path, `tensor ${label} has shape [${t.dims.join(', ')}] (${n} elements) but ${values.length} values`);
    const data = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) fail(path, `tensor ${label}: int32_data value ${v} is not a 16-bit pattern`);
      data[i] = v;
    }
    const dtype = ty.stored as DType;
    return { ...base, offset: first.start, byteLength: total, encoding: ENC_INT32_HALF, decoded: { name, dtype, shape: [...t.dims], data } };
  }
  return { ...base, offset: first.start, byteLength: total, encoding: ENC_TYPED_OTHER };
}

/** Small constant values (shapes, axes, slopes, clip bounds) as numbers, whatever the storage. */
export function readNumbers(model: ModelRecord, t: TensorRecord, entry: TensorEntry, limit = 1 << 20): Float64Array {
  const n = entry.shape.reduce((a, b) => a * b, 1);
  if (n > limit) throw new FileError(model.path, `tensor ${entry.name} is too large to read as a constant (${n} elements)`);
  if (entry.decoded) {
    const d = entry.decoded;
    const out = new Float64Array(d.data.length);
    if (d.dtype === 'float16' || d.dtype === 'bfloat16') {
      // Decoded halves hold bit patterns, not values.
      for (let i = 0; i < out.length; i++) out[i] = halfBits(d.dtype, d.data[i]);
    } else out.set(d.data);
    return out;
  }
  if (entry.encoding === ENC_TYPED_OTHER) {
    const src = ByteSource.open(model.path);
    try {
      return Float64Array.from(readSegments(src, t.typed.get(typedFieldOf(t.dataType)) ?? [], typedFieldOf(t.dataType)));
    } finally {
      src.close();
    }
  }
  const bytes = entry.byteLength > 0 ? readRange(entry.file, entry.offset, entry.byteLength) : Buffer.alloc(0);
  const out = new Float64Array(n);
  const at = (i: number, size: number) => i * size;
  for (let i = 0; i < n; i++) {
    switch (t.dataType) {
      case 1:
        out[i] = bytes.readFloatLE(at(i, 4));
        break;
      case 11:
        out[i] = bytes.readDoubleLE(at(i, 8));
        break;
      case 10:
      case 16:
        out[i] = halfBits(t.dataType === 10 ? 'float16' : 'bfloat16', bytes.readUInt16LE(at(i, 2)));
        break;
      case 2:
      case 9:
        out[i] = bytes.readUInt8(i);
        break;
      case 3:
        out[i] = bytes.readInt8(i);
        break;
      case 4:
        out[i] = bytes.readUInt16LE(at(i, 2));
        break;
      case 5:
        out[i] = bytes.readInt16LE(at(i, 2));
        break;
      case 6:
        out[i] = bytes.readInt32LE(at(i, 4));
        break;
      case 12:
        out[i] = bytes.readUInt32LE(at(i, 4));
        break;
      case 7:
        out[i] = Number(bytes.readBigInt64LE(at(i, 8)));
        break;
      case 13:
        out[i] = Number(bytes.readBigUInt64LE(at(i, 8)));
        break;
      default:
        throw new FileError(model.path, `tensor ${entry.name} (${onnxType(t.dataType)?.name ?? t.dataType}) cannot be read as numbers`);
    }
  }
  return out;
}

function halfBits(dtype: 'float16' | 'bfloat16', bits: number): number {
  return dtype === 'float16' ? float16ToNumber(bits) : bfloat16ToNumber(bits);
}
