// What every format reader produces: named tensors as byte ranges in files (read lazily),
// plus whatever structure the format has (an ONNX graph, a pickled module tree).
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { Network } from '../../engine/network';
import { DTYPE_BYTES, SHARED_MIN_BYTES, backingBuffer, type DType } from '../../tensor/dtype';
import { numel, type Tensor } from '../../tensor/tensor';
import { FileError, ChangedWhileReading } from '../../errors/fileError';

export { ChangedWhileReading };
import { readParallel } from '../../threads/parallel';

/** Element types a checkpoint may store; only the float ones (DType) can be balanced. */
export type StoredDType = DType | 'int8' | 'uint8' | 'int16' | 'int32' | 'int64' | 'bool' | 'float8' | 'complex64' | 'other';

export const FLOAT_DTYPES: readonly StoredDType[] = ['float64', 'float32', 'float16', 'bfloat16'];

export function isFloatDType(d: StoredDType): d is DType {
  return FLOAT_DTYPES.includes(d);
}

export const STORED_BYTES: Partial<Record<StoredDType, number>> = {
  ...DTYPE_BYTES,
  int8: 1,
  uint8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
  float8: 1,
  complex64: 8,
};

/**
 * One tensor of a checkpoint. Its elements are contiguous, row-major, little-endian bytes
 * [offset, offset + byteLength) of `file`, unless `encoding` says otherwise.
 */
export interface TensorEntry {
  name: string;
  dtype: StoredDType;
  shape: number[];
  file: string;
  offset: number;
  byteLength: number;
  /**
   * 'raw' (default): the bytes are the elements. Anything else names a format-specific
   * encoding (e.g. ONNX int32_data varints for float16) that only that format reads and writes.
   */
  encoding?: string;
  /** Values already decoded by the reader (small tensors in non-raw encodings). */
  decoded?: Tensor;
  /** Why this tensor cannot be written back (e.g. quantized), when it cannot. */
  readOnlyReason?: string;
  /**
   * A digest of the bytes `loadTensor` read (set when it reads them from the file): before a
   * balanced copy is committed, `assertUnchangedSinceRead` reads the range again and compares,
   * so a file rewritten in between (even to the same size and mtime) is never blended.
   */
  readDigest?: string;
}

export interface FileStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

export interface Checkpoint {
  path: string;
  /** The ModelFormat id. */
  format: string;
  tensors: TensorEntry[];
  /** Every file the checkpoint spans (shards, external data), as they were when opened. */
  files: FileStamp[];
  /** Things the reader noticed and tolerated (unknown pickle globals, skipped tensors). */
  warnings: string[];
  /** A network the file states directly (the JSON network format). */
  network?: Network;
  /** Format structure for the graph builders (an ONNX model, a module tree). */
  structure?: unknown;
}

export function stampOf(path: string): FileStamp {
  const s = statSync(path);
  return { path, size: s.size, mtimeMs: s.mtimeMs };
}

/** Throws when a file changed since the checkpoint was opened (a training run saving over it). */
export function assertUnchanged(cp: Checkpoint): void {
  for (const f of cp.files) {
    let now: FileStamp;
    try {
      now = stampOf(f.path);
    } catch {
      throw new ChangedWhileReading(f.path, 'the file disappeared while it was being read');
    }
    if (now.size !== f.size || now.mtimeMs !== f.mtimeMs) throw new ChangedWhileReading(f.path);
  }
}

/**
 * Windows of a tensor's bytes that its digest covers: all of a small tensor; for a large one,
 * SAMPLE_WINDOWS windows of SAMPLE_BYTES spread evenly, first and last included. A training run
 * that saves over the file changes nearly every weight, so samples see it, and the check costs a
 * few hundred KiB per tensor instead of reading (and hashing) every weight again at each commit.
 */
const SAMPLE_WINDOWS = 64;
const SAMPLE_BYTES = 4096;

function sampleWindows(length: number): [number, number][] {
  if (length <= SAMPLE_WINDOWS * SAMPLE_BYTES) return [[0, length]];
  const step = (length - SAMPLE_BYTES) / (SAMPLE_WINDOWS - 1);
  return Array.from({ length: SAMPLE_WINDOWS }, (_, k) => [Math.round(k * step), SAMPLE_BYTES] as [number, number]);
}

/** The digest `readDigest` holds (SHA-1 of the sampled windows: no adversary is assumed, only a training run). */
export function digestOf(bytes: Buffer): string {
  const h = createHash('sha1');
  for (const [at, n] of sampleWindows(bytes.length)) h.update(bytes.subarray(at, at + n));
  return h.digest('hex');
}

/** The same digest of [offset, offset + length) of an open file, read window by window. */
function digestOfRange(fd: number, offset: number, length: number, chunk: Buffer): string | undefined {
  const h = createHash('sha1');
  for (const [at, n] of sampleWindows(length)) {
    for (let done = 0; done < n; ) {
      const got = readSync(fd, chunk, 0, Math.min(chunk.length, n - done), offset + at + done);
      if (got === 0) return undefined;
      h.update(chunk.subarray(0, got));
      done += got;
    }
  }
  return h.digest('hex');
}

/**
 * The commit point's check: every file the checkpoint spans has its size and mtime of when it
 * was opened (`assertUnchanged`), and every tensor that was read still has the bytes that were
 * read (their sampled digests). A file rewritten while it was balanced — a training run saving it, even
 * one that keeps its size and restores its mtime — throws `ChangedWhileReading` naming it, so
 * that no copy mixing the weights read with the file's new bytes is ever written.
 */
export function assertUnchangedSinceRead(cp: Checkpoint): void {
  assertUnchanged(cp);
  const byFile = new Map<string, TensorEntry[]>();
  for (const t of cp.tensors) {
    if (t.readDigest === undefined) continue;
    const list = byFile.get(t.file);
    if (list) list.push(t);
    else byFile.set(t.file, [t]);
  }
  const chunk = Buffer.allocUnsafe(1 << 22);
  for (const [file, entries] of byFile) {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      throw new ChangedWhileReading(file, 'the file disappeared while it was being balanced; nothing written');
    }
    try {
      for (const t of entries) {
        if (digestOfRange(fd, t.offset, t.byteLength, chunk) !== t.readDigest) {
          throw new ChangedWhileReading(file, `the file changed while it was being balanced (tensor ${t.name} no longer has the bytes that were read); nothing written — balance it again once it is saved`);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** Reads [offset, offset + length) of a file (into shared memory when large, by several threads). */
export function readRange(path: string, offset: number, length: number): Buffer {
  if (length >= SHARED_MIN_BYTES) {
    const shared = new SharedArrayBuffer(length);
    if (readParallel(path, offset, length, shared)) return Buffer.from(shared);
  }
  const buf = length >= SHARED_MIN_BYTES ? Buffer.from(backingBuffer(length)) : Buffer.allocUnsafe(length);
  const fd = openSync(path, 'r');
  try {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, offset + done);
      if (n === 0) throw new FileError(path, `unexpected end of file at byte ${offset + done} (wanted ${length} bytes at ${offset})`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** Typed-array view of little-endian bytes (copies only when unaligned). */
export function typedFromBytes(dtype: DType, bytes: Buffer): Tensor['data'] {
  const size = DTYPE_BYTES[dtype];
  let aligned = bytes;
  if (bytes.byteOffset % size !== 0) {
    aligned = Buffer.from(backingBuffer(bytes.length));
    bytes.copy(aligned);
  }
  const n = aligned.length / size;
  switch (dtype) {
    case 'float64':
      return new Float64Array(aligned.buffer, aligned.byteOffset, n);
    case 'float32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, n);
    default:
      return new Uint16Array(aligned.buffer, aligned.byteOffset, n);
  }
}

/**
 * Whether a raw entry's bytes in its file equal `expected`, read through one reused buffer
 * (verifying a written copy must not allocate the whole tensor again).
 */
export function entryBytesEqual(entry: TensorEntry, expected: Buffer): boolean {
  if ((entry.encoding ?? 'raw') !== 'raw') return bytesOf(loadTensor(entry)).equals(expected);
  if (entry.byteLength !== expected.length) return false;
  const chunk = Buffer.allocUnsafe(Math.min(expected.length, 1 << 24) || 1);
  const fd = openSync(entry.file, 'r');
  try {
    for (let done = 0; done < expected.length; ) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, expected.length - done), entry.offset + done);
      if (n === 0 || !chunk.subarray(0, n).equals(expected.subarray(done, done + n))) return false;
      done += n;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

export function bytesOf(t: Tensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Loads a float tensor's values; errors name the file and the tensor. */
export function loadTensor(entry: TensorEntry): Tensor {
  if (entry.decoded) return entry.decoded;
  if (!isFloatDType(entry.dtype)) throw new FileError(entry.file, `tensor ${entry.name} is ${entry.dtype}, not a float type`);
  if ((entry.encoding ?? 'raw') !== 'raw') throw new FileError(entry.file, `tensor ${entry.name} uses encoding ${entry.encoding}, which its reader must decode`);
  const expected = numel(entry.shape) * DTYPE_BYTES[entry.dtype];
  if (expected !== entry.byteLength) {
    throw new FileError(entry.file, `tensor ${entry.name} has shape [${entry.shape.join(', ')}] (${expected} bytes) but ${entry.byteLength} bytes of data`);
  }
  const bytes = readRange(entry.file, entry.offset, entry.byteLength);
  entry.readDigest = digestOf(bytes);
  return { name: entry.name, dtype: entry.dtype, shape: entry.shape, data: typedFromBytes(entry.dtype, bytes) };
}
