// HDF5 through h5wasm: loading the WebAssembly module once (asynchronous), then synchronous
// file access — open, string attributes, dataset metadata, raw little-endian dataset bytes in
// and out. h5wasm reports no dataset file offsets, so values are read through the library and
// written back with it (in a copy of the file).
import type { File as H5File, Group as H5Group, Metadata } from 'h5wasm';
import type { StoredDType } from '../core/checkpoint';
import { FileError } from '../../errors/fileError';

type H5Api = typeof import('h5wasm').default;
type H5Module = Awaited<H5Api['ready']>;

interface Loaded {
  api: H5Api;
  module: H5Module;
}

let loaded: Loaded | undefined;
let loading: Promise<void> | undefined;

/**
 * Loads h5wasm (an ES module with a WebAssembly heap) once. Keras `.h5`/`.keras` files can be
 * opened and written synchronously only after this promise resolves; call it at start-up.
 */
export function prepareKeras(): Promise<void> {
  loading ??= (async () => {
    const mod = await import('h5wasm/node');
    const api = (mod.default ?? mod) as H5Api;
    const module = await api.ready;
    // HDF5 would print its error stack on stderr; make failures throw instead.
    module.activate_throwing_error_handler();
    loaded = { api, module };
  })().catch((e) => {
    loading = undefined;
    throw new Error(`HDF5 support (h5wasm) could not be loaded: ${(e as Error).message}`);
  });
  return loading;
}

export function kerasReady(): boolean {
  return loaded !== undefined;
}

function lib(path: string): Loaded {
  if (!loaded) throw new FileError(path, `HDF5 support is not loaded yet (await prepareKeras() once before opening Keras files)`);
  return loaded;
}

/** The innermost message of an HDF5 error stack ("truncated file: eof = 3000, ..."). */
export function hdf5Reason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const lines = text.split('\n').filter((l) => /^\s*#\d+:/.test(l));
  const last = lines[lines.length - 1];
  const m = last?.match(/\(\):\s*(.*)$/);
  return (m ? m[1] : text.split('\n')[0]).trim();
}

/** Opens an HDF5 file; `label` names it in errors (a temporary copy is named by its target). */
export function openHdf5(path: string, mode: 'r' | 'a', label = path): H5File {
  const { api } = lib(label);
  let f: H5File;
  try {
    f = new api.File(path, mode);
  } catch (e) {
    throw new Error(`${label}: not a readable HDF5 file (${hdf5Reason(e)})`);
  }
  if (f.file_id < 0n) throw new Error(`${label}: not a readable HDF5 file`);
  return f;
}

/** The group at `at`, or undefined when there is none (or something else is there). */
export function groupAt(f: H5File, at: string): H5Group | undefined {
  const { api } = lib(f.filename);
  const g = f.get(at);
  return g instanceof api.Group ? g : undefined;
}

export function closeHdf5(f: H5File): void {
  try {
    f.close();
  } catch {
    // Closing after a failed read must not hide the first error.
  }
}

function asStrings(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  // An empty list saved by h5py is an empty float array.
  if (ArrayBuffer.isView(v) && (v as unknown as ArrayLike<number>).length === 0) return [];
  return undefined;
}

/** Anything with HDF5 attributes (file, group, dataset). */
type WithAttributes = Pick<H5Group, 'attrs' | 'get_attribute'>;

/** A string (or list of strings) attribute; undefined when absent. */
export function stringAttribute(obj: WithAttributes, name: string): string[] | undefined {
  const names = Object.keys(obj.attrs);
  if (!names.includes(name)) return undefined;
  return asStrings(obj.get_attribute(name, false));
}

/**
 * A list attribute as Keras 2 saves it: whole, or split into `name0`, `name1`, … when it
 * would not fit an HDF5 object header.
 */
export function listAttribute(obj: WithAttributes, name: string): string[] | undefined {
  const whole = stringAttribute(obj, name);
  if (whole) return whole;
  const parts: string[] = [];
  for (let i = 0; ; i++) {
    const part = stringAttribute(obj, `${name}${i}`);
    if (!part) return i === 0 ? undefined : parts;
    parts.push(...part);
  }
}

export interface DatasetInfo {
  path: string;
  shape: number[];
  dtype: StoredDType;
  itemSize: number;
  /** h5py filters (compression) make no difference to reading and writing through HDF5. */
  chunked: boolean;
}

const TYPE_INTEGER = 0;
const TYPE_FLOAT = 1;
const TYPE_OPAQUE = 5;
const TYPE_ENUM = 8;

function storedType(meta: Metadata, bfloat16: boolean): StoredDType {
  if (meta.type === TYPE_FLOAT) return meta.size === 8 ? 'float64' : meta.size === 4 ? 'float32' : meta.size === 2 ? 'float16' : 'other';
  if (meta.type === TYPE_OPAQUE && meta.size === 2 && bfloat16) return 'bfloat16';
  if (meta.type === TYPE_INTEGER) {
    if (meta.size === 1) return meta.signed ? 'int8' : 'uint8';
    if (meta.size === 2 && meta.signed) return 'int16';
    if (meta.size === 4 && meta.signed) return 'int32';
    if (meta.size === 8 && meta.signed) return 'int64';
  }
  if (meta.type === TYPE_ENUM && meta.size === 1) return 'bool';
  return 'other';
}

/** Metadata of the dataset at `dsPath`, or undefined when there is no dataset there. */
export function datasetInfo(f: H5File, dsPath: string): DatasetInfo | undefined {
  const { api } = lib(f.filename);
  const obj = f.get(dsPath);
  if (!(obj instanceof api.Dataset)) return undefined;
  const meta = obj.metadata;
  // Keras 3 marks bfloat16 variables with a "dtype" attribute on an opaque 2-byte type.
  const bf = meta.type === TYPE_OPAQUE && stringAttribute(obj, 'dtype')?.[0] === 'bfloat16';
  return { path: obj.path, shape: [...(meta.shape ?? [])], dtype: storedType(meta, bf), itemSize: meta.size, chunked: meta.chunks !== null };
}

/** Rows of axis 0 per read or write, so the WebAssembly heap stays small. */
const SLICE_BYTES = 64 << 20;

function sliceRows(info: DatasetInfo): number {
  const rowBytes = info.shape.slice(1).reduce((a, b) => a * b, info.itemSize);
  return Math.max(1, Math.floor(SLICE_BYTES / Math.max(rowBytes, 1)));
}

function transfer(f: H5File, info: DatasetInfo, bytes: Buffer, write: boolean): void {
  const { module } = lib(f.filename);
  const total = info.shape.reduce((a, b) => a * b, info.itemSize);
  if (bytes.length !== total) throw new FileError(f.filename, `dataset ${info.path} holds ${total} bytes, not ${bytes.length}`);
  if (total === 0) return;
  const rank = info.shape.length;
  const rows = rank === 0 ? 1 : info.shape[0];
  const step = rank === 0 ? 1 : sliceRows(info);
  const rowBytes = rank === 0 ? total : total / rows;
  const ptr = module._malloc(Math.min(total, step * rowBytes));
  if (!ptr) throw new FileError(f.filename, `out of WebAssembly memory for dataset ${info.path}`);
  try {
    for (let r = 0; r < rows; r += step) {
      const n = Math.min(step, rows - r);
      const whole = rank === 0 || n === rows;
      const count = whole ? null : info.shape.map((d, i) => BigInt(i === 0 ? n : d));
      const offset = whole ? null : info.shape.map((_, i) => BigInt(i === 0 ? r : 0));
      const strides = whole ? null : info.shape.map(() => 1n);
      const part = bytes.subarray(r * rowBytes, (r + n) * rowBytes);
      try {
        if (write) {
          module.HEAPU8.set(part, ptr);
          if (module.set_dataset_data(f.file_id, info.path, count, offset, strides, BigInt(ptr)) < 0) throw new Error('write failed');
        } else {
          if (module.get_dataset_data(f.file_id, info.path, count, offset, strides, BigInt(ptr)) < 0) throw new Error('read failed');
          part.set(module.HEAPU8.subarray(ptr, ptr + part.length));
        }
      } catch (e) {
        throw new FileError(f.filename, `cannot ${write ? 'write' : 'read'} dataset ${info.path} (${hdf5Reason(e)})`);
      }
    }
  } finally {
    module._free(ptr);
  }
}

/** The dataset's elements as little-endian bytes, row-major (HDF5 converts big-endian files). */
export function readDatasetBytes(f: H5File, info: DatasetInfo): Buffer {
  const out = Buffer.alloc(info.shape.reduce((a, b) => a * b, info.itemSize));
  transfer(f, info, out, false);
  return out;
}

/** Overwrites every element of the dataset from little-endian bytes. */
export function writeDatasetBytes(f: H5File, info: DatasetInfo, bytes: Buffer): void {
  transfer(f, info, bytes, true);
}
