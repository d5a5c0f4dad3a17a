// HDF5 through h5wasm: loading the WebAssembly module once (asynchronous), then synchronous
// file access — open, string attributes, dataset metadata, raw little-endian dataset bytes in
// and out. h5wasm reports no dataset file offsets, so values are read through the library and
// written back with it (in a copy of the file).
//
// One file only: HDF5 can keep a dataset's values in other files (external raw storage, virtual
// datasets) or link a dataset or group to another file (external links), with any path the
// file's maker chose. Writing a balanced copy through such a file would write into those other
// files (the "kept" original would then read balanced weights), so files whose weights reach
// outside are refused when opened: links and virtual datasets by their metadata, and any file
// HDF5 tries to open while a group or dataset is looked up, read or written (external storage
// shows no other way) is denied at the WebAssembly file system and named in the error.
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
    confineOpens(module);
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

interface Confinement {
  /** Paths HDF5 tried to open while confined (refused). */
  opened: string[];
}

let confinement: Confinement | undefined;

const O_CREAT_EXCL = 0o300;

/**
 * Denies every file HDF5 opens while a lookup, read or write runs under `confined`: the file
 * itself is open already, so any other open is an external link, external storage or a
 * virtual dataset's source reaching outside it.
 */
function confineOpens(module: H5Module): void {
  const fs = (module as unknown as { FS: { open: (path: unknown, ...rest: unknown[]) => unknown; ErrnoError: new (errno: number) => Error } }).FS;
  const open = fs.open;
  fs.open = function (this: unknown, path: unknown, flags?: unknown, ...rest: unknown[]) {
    // O_CREAT|O_EXCL makes a new file and cannot touch an existing one: HDF5's error handler
    // prints its error stack into a tmpfile() that way.
    const createsNew = typeof flags === 'number' && (flags & O_CREAT_EXCL) === O_CREAT_EXCL;
    if (confinement && !createsNew) {
      confinement.opened.push(String(path));
      throw new fs.ErrnoError(2); // EACCES in Emscripten's numbering
    }
    return open.call(this, path, flags, ...rest);
  };
}

const OUTSIDE = 'weights kept in other files are refused (writing a balanced copy would write into them)';

function reachesOut(what: string): (path: string) => string {
  return (path) => `${what} reaches into another file (${path}): ${OUTSIDE}`;
}

/** Runs `fn` with every other file closed to HDF5; an attempt to open one is a FileError, its problem `refusal(path)`. */
function confined<T>(label: string, refusal: (path: string) => string, fn: () => T): T {
  const mine: Confinement = { opened: [] };
  const outer = confinement;
  confinement = mine;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    if (mine.opened.length === 0) throw e;
    result = undefined as T;
  } finally {
    confinement = outer;
  }
  if (mine.opened.length) throw new FileError(label, refusal(mine.opened[0]));
  return result;
}

/** Refuses `at` when it, or a group on the way to it, is an external link (checked link by link, never followed). */
function refuseExternalLinks(f: H5File, at: string, label: string, what: string): void {
  const { module } = lib(label);
  const parts = at.split('/').filter((p) => p !== '');
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join('/');
    let link: { filename?: string; obj_path?: string };
    try {
      link = confined(label, reachesOut(what), () => module.get_external_link(f.file_id, prefix) as { filename?: string; obj_path?: string });
    } catch (e) {
      if (e instanceof FileError) throw e;
      return; // no such link: the lookup itself will say so
    }
    if (link?.filename !== undefined) {
      throw new FileError(label, `${prefix === parts.join('/') ? what : `${what}: ${prefix}`} is an HDF5 external link to ${link.filename}:${link.obj_path ?? '/'}; ${OUTSIDE}`);
    }
  }
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

/** The group at `at`, or undefined when there is none (or something else is there); `label` names the file in errors. */
export function groupAt(f: H5File, at: string, label = f.filename): H5Group | undefined {
  const { api } = lib(label);
  refuseExternalLinks(f, at, label, `group ${at}`);
  const g = confined(label, reachesOut(`group ${at}`), () => f.get(at));
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

/**
 * Metadata of the dataset at `dsPath`, or undefined when there is no dataset there; `label`
 * names the file in errors. A dataset reached through an external link, or a virtual one, is refused.
 */
export function datasetInfo(f: H5File, dsPath: string, label = f.filename): DatasetInfo | undefined {
  const { api } = lib(label);
  refuseExternalLinks(f, dsPath, label, `dataset ${dsPath}`);
  const obj = confined(label, reachesOut(`dataset ${dsPath}`), () => f.get(dsPath));
  if (!(obj instanceof api.Dataset)) return undefined;
  const meta = confined(label, reachesOut(`dataset ${dsPath}`), () => obj.metadata);
  if (meta.virtual_sources?.length) {
    const files = [...new Set(meta.virtual_sources.map((v) => v.file_name))].join(', ');
    throw new FileError(label, `dataset ${dsPath} is an HDF5 virtual dataset mapping ${files}; ${OUTSIDE}`);
  }
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

function transfer(f: H5File, info: DatasetInfo, bytes: Buffer, write: boolean, label: string): void {
  const { module } = lib(label);
  const total = info.shape.reduce((a, b) => a * b, info.itemSize);
  if (bytes.length !== total) throw new FileError(label, `dataset ${info.path} holds ${total} bytes, not ${bytes.length}`);
  if (total === 0) return;
  const rank = info.shape.length;
  const rows = rank === 0 ? 1 : info.shape[0];
  const step = rank === 0 ? 1 : sliceRows(info);
  const rowBytes = rank === 0 ? total : total / rows;
  const ptr = module._malloc(Math.min(total, step * rowBytes));
  if (!ptr) throw new FileError(label, `out of WebAssembly memory for dataset ${info.path}`);
  try {
    for (let r = 0; r < rows; r += step) {
      const n = Math.min(step, rows - r);
      const whole = rank === 0 || n === rows;
      const count = whole ? null : info.shape.map((d, i) => BigInt(i === 0 ? n : d));
      const offset = whole ? null : info.shape.map((_, i) => BigInt(i === 0 ? r : 0));
      const strides = whole ? null : info.shape.map(() => 1n);
      const part = bytes.subarray(r * rowBytes, (r + n) * rowBytes);
      try {
        // External storage shows only here: HDF5 opens the other file to read or write it.
        confined(label, (p) => `dataset ${info.path} keeps its values in another file (${p}: HDF5 external storage); ${OUTSIDE}`, () => {
          if (write) {
            module.HEAPU8.set(part, ptr);
            if (module.set_dataset_data(f.file_id, info.path, count, offset, strides, BigInt(ptr)) < 0) throw new Error('write failed');
          } else {
            if (module.get_dataset_data(f.file_id, info.path, count, offset, strides, BigInt(ptr)) < 0) throw new Error('read failed');
            part.set(module.HEAPU8.subarray(ptr, ptr + part.length));
          }
        });
      } catch (e) {
        if (e instanceof FileError) throw e;
        throw new FileError(label, `cannot ${write ? 'write' : 'read'} dataset ${info.path} (${hdf5Reason(e)})`);
      }
    }
  } finally {
    module._free(ptr);
  }
}

/** The dataset's elements as little-endian bytes, row-major (HDF5 converts big-endian files). */
export function readDatasetBytes(f: H5File, info: DatasetInfo, label = f.filename): Buffer {
  const out = Buffer.alloc(info.shape.reduce((a, b) => a * b, info.itemSize));
  transfer(f, info, out, false, label);
  return out;
}

/** Overwrites every element of the dataset from little-endian bytes. */
export function writeDatasetBytes(f: H5File, info: DatasetInfo, bytes: Buffer, label = f.filename): void {
  transfer(f, info, bytes, true, label);
}
