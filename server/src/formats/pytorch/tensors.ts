// From pickled tensor descriptors (storage + offset + size + stride) to TensorEntries:
// byte ranges in the file when the view is contiguous, with the checks that keep a
// damaged or hostile pickle from pointing outside its storage.
import { STORED_BYTES, isFloatDType, typedFromBytes, type TensorEntry } from '../core/checkpoint';
import type { StorageRef } from './torchGlobals';
import type { NamedTensor } from './walk';

/** Where a storage's bytes are. */
export interface StorageBytes {
  /** File offset of the storage's first byte. */
  offset: number;
  /** Bytes available to the storage. */
  byteLength: number;
  /** The bytes themselves, when the file holds them compressed. */
  inMemory?: Buffer;
  /** How the storage is named in messages ("data/3"). */
  label: string;
}

/** Largest strided view decoded into memory at open time. */
export const MAX_GATHER_BYTES = 64 * 1024 * 1024;
/** All the views one checkpoint decodes into memory at open time, together. */
export const MAX_DECODED_BYTES = 256 * 1024 * 1024;
/** No real tensor has this many elements; larger claims are damage or hostility. */
const MAX_ELEMENTS = 2 ** 50;

function checkShape(name: string, shape: readonly number[], stride: readonly number[]): number {
  if (shape.length > 64) throw new Error(`tensor ${name} has ${shape.length} dimensions`);
  if (stride.length !== shape.length) throw new Error(`tensor ${name} has shape [${shape.join(', ')}] but ${stride.length} strides`);
  let numel = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`tensor ${name} has an impossible shape [${shape.join(', ')}]`);
    numel *= d;
  }
  if (numel > MAX_ELEMENTS) throw new Error(`tensor ${name} has an impossible shape [${shape.join(', ')}] (${numel} elements)`);
  for (const s of stride) if (!Number.isSafeInteger(s) || s < 0) throw new Error(`tensor ${name} has impossible strides [${stride.join(', ')}]`);
  return numel;
}

function isRowMajor(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** Copies a strided view's elements into row-major order (word by word for 2/4/8-byte elements). */
function gather(source: Buffer, itemsize: number, shape: readonly number[], stride: readonly number[], numel: number): Buffer {
  const out = Buffer.alloc(numel * itemsize);
  const words = itemsize === 2 ? 1 : itemsize === 4 ? 1 : itemsize === 8 ? 2 : 0;
  if (words) {
    // An aligned copy of the source, so typed views can move whole elements.
    const aligned = new Uint8Array(source.length);
    aligned.set(source);
    const View = itemsize === 2 ? Uint16Array : Uint32Array;
    const from = new View(aligned.buffer, 0, Math.floor(source.length / (itemsize === 2 ? 2 : 4)));
    const to = new View(out.buffer, out.byteOffset, (numel * itemsize) / (itemsize === 2 ? 2 : 4));
    walkStrided(shape, stride, numel, (i, src) => {
      to[i * words] = from[src * words];
      if (words === 2) to[i * 2 + 1] = from[src * 2 + 1];
    });
    return out;
  }
  walkStrided(shape, stride, numel, (i, src) => source.copy(out, i * itemsize, src * itemsize, (src + 1) * itemsize));
  return out;
}

/** Calls `f(i, src)` for each row-major position i and its element index in the storage. */
function walkStrided(shape: readonly number[], stride: readonly number[], numel: number, f: (i: number, src: number) => void): void {
  const index = new Array<number>(shape.length).fill(0);
  let src = 0;
  for (let i = 0; i < numel; i++) {
    f(i, src);
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]++;
      src += stride[d];
      if (index[d] < shape[d]) break;
      src -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
}

export function tensorEntries(
  file: string,
  named: readonly NamedTensor[],
  bytesOf: (ref: StorageRef, tensorName: string) => StorageBytes,
  readBytes: (offset: number, length: number) => Buffer,
): TensorEntry[] {
  let decodedBytes = 0;
  return named.map(({ name, ref }) => {
    const { storage, storageOffset, shape, stride } = ref;
    const kind = storage.kind;
    const numel = checkShape(name, shape, stride);
    const where = bytesOf(storage, name);
    const itemsize = kind.itemsize;
    if (itemsize === undefined) {
      return { name, dtype: kind.dtype, shape: [...shape], file, offset: where.offset, byteLength: 0, readOnlyReason: `${kind.torchDtype} packs several elements per byte; this reader does not unpack it` };
    }
    if (!Number.isSafeInteger(storageOffset) || storageOffset < 0) throw new Error(`tensor ${name} has an impossible storage offset ${storageOffset}`);
    let span = 0;
    if (numel > 0) {
      span = 1;
      for (let i = 0; i < shape.length; i++) span += (shape[i] - 1) * stride[i];
    }
    const lastElement = numel > 0 ? storageOffset + span : storageOffset;
    if (numel > 0 && lastElement > storage.numel) {
      throw new Error(`tensor ${name} (shape [${shape.join(', ')}], offset ${storageOffset}) reaches element ${lastElement} of storage ${where.label}, which holds ${storage.numel}`);
    }
    if (lastElement * itemsize > where.byteLength) {
      throw new Error(`tensor ${name} needs ${lastElement * itemsize} bytes of storage ${where.label}, which holds ${where.byteLength}`);
    }
    // Views whose elements overlap (a stride 0 broadcast, or strides that revisit elements)
    // claim more elements than their storage holds; decoded, each repeat costs memory.
    const overlapping = numel > 0 && numel * itemsize > where.byteLength - storageOffset * itemsize;
    if (overlapping && numel * itemsize > MAX_GATHER_BYTES) {
      throw new Error(
        `tensor ${name} claims ${numel} elements (shape [${shape.join(', ')}], stride [${stride.join(', ')}]) from storage ${where.label}, which holds ${where.byteLength} bytes: ` +
          `a view that repeats its storage's elements, larger than the ${MAX_GATHER_BYTES} bytes this reader expands`,
      );
    }
    const entry: TensorEntry = { name, dtype: kind.dtype, shape: [...shape], file, offset: where.offset + storageOffset * itemsize, byteLength: numel * itemsize };
    if (STORED_BYTES[kind.dtype] !== itemsize) entry.dtype = 'other';
    const contiguous = isRowMajor(shape, stride);
    const reasons: string[] = [];
    if (kind.quantized) reasons.push(`it is quantized (${kind.torchDtype}, ${ref.quantization ?? 'unknown quantizer'}); writing it back would need requantization`);
    if (overlapping) reasons.push(`it is a view that repeats elements (stride [${stride.join(', ')}]) of storage ${where.label}: its ${numel} elements are not ${numel} values of their own`);
    else if (!contiguous) reasons.push(`it is a non-contiguous view (stride [${stride.join(', ')}]) of storage ${where.label}, not one byte range`);
    if (where.inMemory) reasons.push(`its storage ${where.label} is compressed in the zip archive`);
    if (reasons.length) entry.readOnlyReason = reasons.join('; ');

    if (contiguous && !where.inMemory) return entry;
    entry.encoding = contiguous ? 'zip-deflate' : 'strided';
    const spanBytes = span * itemsize;
    if (!isFloatDType(entry.dtype) || spanBytes > MAX_GATHER_BYTES) return entry;
    if (decodedBytes + entry.byteLength > MAX_DECODED_BYTES) {
      entry.readOnlyReason += `; it is not decoded: the checkpoint's views and compressed tensors exceed the ${MAX_DECODED_BYTES} bytes this reader decodes`;
      return entry;
    }
    decodedBytes += entry.byteLength;
    const start = storageOffset * itemsize;
    const raw = where.inMemory ? where.inMemory.subarray(start, start + spanBytes) : readBytes(entry.offset, spanBytes);
    const bytes = contiguous ? raw : gather(raw, itemsize, shape, stride, numel);
    entry.decoded = { name, dtype: entry.dtype, shape: [...shape], data: typedFromBytes(entry.dtype, bytes) };
    return entry;
  });
}

/** Warning lines for tensors whose byte ranges overlap (tied weights, views of one storage). */
export function sharedRangeWarnings(entries: readonly TensorEntry[]): string[] {
  const ranged = entries.filter((e) => (e.encoding ?? 'raw') === 'raw' && e.byteLength > 0).sort((a, b) => a.offset - b.offset);
  const out: string[] = [];
  let open: TensorEntry | undefined;
  for (const e of ranged) {
    if (open && e.file === open.file && e.offset < open.offset + open.byteLength) {
      const same = e.offset === open.offset && e.byteLength === open.byteLength;
      out.push(`tensors ${open.name} and ${e.name} ${same ? 'are the same bytes (tied weights)' : 'overlap in one storage'}: changing one changes the other`);
    }
    if (!open || e.offset + e.byteLength > open.offset + open.byteLength) open = e;
  }
  return out;
}
