// NumPy `.npy` arrays and `.npz` archives of them (np.savez stores entries, np.savez_compressed
// deflates them). An `.npy` is the magic "\x93NUMPY", a version, a Python-literal header
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)} padded to 64 bytes, then the data.
// Little-endian C-order data in a file or a stored entry is a plain byte range; big-endian,
// Fortran-order and deflated data are decoded here and encoded back the same way on writing.
import { basename } from 'node:path';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { Tensor } from '../../tensor/tensor';
import { assertUnchanged, bytesOf, isFloatDType, readRange, stampOf, typedFromBytes, type Checkpoint, type FileStamp, type StoredDType, type TensorEntry } from '../core/checkpoint';
import { writePatchedCopy } from '../core/patch';
import type { ModelFormat, WriteOptions } from '../core/format';
import { STORED, firstZipEntryName, readZipEntry, readZipFileDirectory, writeZipFile, type ZipEntry, type ZipItem } from '../zip';
import { stateDictToNetwork } from '../stateDict/build';
import { fail } from '../../errors/fileError';

export const NPY_FORMAT = 'npy';
export const NPZ_FORMAT = 'npz';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
/** numpy itself refuses headers over 10 000 bytes by default; allow generous room. */
const MAX_HEADER = 1 << 20;
const MAX_RANK = 32;
/** numpy's header literal is a flat dict with one tuple; deeper nesting is damage or hostility. */
const MAX_LITERAL_DEPTH = 8;
/** The arrays of one .npz that this reader inflates into memory, together. */
export const MAX_NPZ_INFLATED_BYTES = 512 * 1024 * 1024;

export interface NpyHeader {
  descr: string;
  dtype: StoredDType;
  itemSize: number;
  bigEndian: boolean;
  fortran: boolean;
  shape: number[];
  /** Offset of the data from the start of the .npy bytes. */
  dataOffset: number;
  byteLength: number;
}


// ------------------------------------------------------------------ the header's Python literal

type Literal = string | number | boolean | null | Literal[] | { [k: string]: Literal };

/** Parses the small subset of Python literals numpy writes in headers. */
function parseLiteral(text: string, where: string): Literal {
  let i = 0;
  const skip = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  let depth = 0;
  const value = (): Literal => {
    skip();
    const c = text[i];
    if ((c === '{' || c === '(' || c === '[') && depth >= MAX_LITERAL_DEPTH) fail(where, `the .npy header nests deeper than ${MAX_LITERAL_DEPTH} levels`);
    if (c === '{') {
      i++;
      depth++;
      const obj: { [k: string]: Literal } = Object.create(null);
      for (;;) {
        skip();
        if (i >= text.length) fail(where, 'the .npy header is not a valid dictionary');
        if (text[i] === '}') {
          i++;
          depth--;
          return obj;
        }
        const k = value();
        if (typeof k !== 'string') fail(where, 'the .npy header has a key that is not a string');
        skip();
        if (text[i++] !== ':') fail(where, 'the .npy header is not a valid dictionary');
        obj[k] = value();
        skip();
        if (text[i] === ',') i++;
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      depth++;
      const items: Literal[] = [];
      for (;;) {
        skip();
        if (text[i] === close) {
          i++;
          depth--;
          return items;
        }
        items.push(value());
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail(where, 'the .npy header has a malformed tuple');
      }
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail(where, 'the .npy header has an unterminated string');
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^(-?\d+)L?|^(True|False|None)/.exec(text.slice(i));
    if (!m) fail(where, `the .npy header cannot be read near "${text.slice(i, i + 20)}"`);
    i += m[0].length;
    if (m[2]) return m[2] === 'True' ? true : m[2] === 'False' ? false : null;
    return Number(m[1]);
  };
  const v = value();
  return v;
}

const KINDS: Record<string, StoredDType> = { f2: 'float16', f4: 'float32', f8: 'float64', i1: 'int8', u1: 'uint8', i2: 'int16', i4: 'int32', i8: 'int64', b1: 'bool', c8: 'complex64' };

function dtypeOf(descr: string, where: string): { dtype: StoredDType; itemSize: number; bigEndian: boolean } {
  const m = /^([<>|=]?)([a-zA-Z])(\d+)$/.exec(descr);
  if (!m) fail(where, `unsupported array type "${descr}"`);
  const itemSize = Number(m[3]);
  if (!(itemSize > 0)) fail(where, `array type "${descr}" has no element size`);
  return { dtype: KINDS[`${m[2]}${m[3]}`] ?? 'other', itemSize, bigEndian: m[1] === '>' && itemSize > 1 };
}

/** Parses the header at the start of `bytes`; `available` is how many bytes the array spans. */
export function parseNpyHeader(bytes: Buffer, available: number, where: string): NpyHeader {
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) fail(where, 'not a NumPy .npy array (wrong magic bytes)');
  const major = bytes[6];
  if (major < 1 || major > 3) fail(where, `unknown .npy format version ${major}.${bytes[7]}`);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) fail(where, 'the .npy header is truncated');
  const headerLen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = 8 + lenBytes;
  if (headerLen > MAX_HEADER) fail(where, `the .npy header claims ${headerLen} bytes`);
  if (start + headerLen > bytes.length) fail(where, 'the .npy header is truncated');
  const text = bytes.subarray(start, start + headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const dict = parseLiteral(text, where);
  if (dict === null || typeof dict !== 'object' || Array.isArray(dict)) fail(where, 'the .npy header is not a dictionary');
  const { descr, fortran_order: fortran, shape } = dict as Record<string, Literal>;
  if (typeof descr !== 'string') fail(where, 'structured arrays (a list of fields as "descr") are not supported');
  if (typeof fortran !== 'boolean') fail(where, 'the .npy header has no fortran_order');
  if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    fail(where, `the .npy header has an impossible shape ${JSON.stringify(shape)}`);
  }
  const dims = shape as number[];
  const t = dtypeOf(descr, where);
  let byteLength = t.itemSize;
  for (const d of dims) byteLength *= d;
  const dataOffset = start + headerLen;
  if (!Number.isSafeInteger(byteLength) || dataOffset + byteLength > available) {
    fail(where, `shape [${dims.join(', ')}] of ${descr} needs ${byteLength} bytes of data, but only ${Math.max(available - dataOffset, 0)} follow the header (truncated or impossible)`);
  }
  return { descr, ...t, fortran, shape: dims, dataOffset, byteLength };
}

// ------------------------------------------------------------------ element order and byte order

/** Copies elements between C order and Fortran order (toFortran picks the direction). */
function reorder(src: Buffer, shape: readonly number[], itemSize: number, toFortran: boolean): Buffer {
  const out = Buffer.alloc(src.length);
  const n = src.length / itemSize;
  const rank = shape.length;
  const fStride = new Array<number>(rank);
  let acc = 1;
  for (let k = 0; k < rank; k++) {
    fStride[k] = acc;
    acc *= shape[k];
  }
  const idx = new Array<number>(rank).fill(0);
  let f = 0;
  for (let c = 0; c < n; c++) {
    const [from, to] = toFortran ? [c, f] : [f, c];
    src.copy(out, to * itemSize, from * itemSize, (from + 1) * itemSize);
    // Advance the C-order multi-index (last axis fastest), keeping f in step.
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]++;
      f += fStride[k];
      if (idx[k] < shape[k]) break;
      f -= fStride[k] * shape[k];
      idx[k] = 0;
    }
  }
  return out;
}

function swapBytes(src: Buffer, itemSize: number): Buffer {
  const out = Buffer.from(src);
  if (itemSize === 2) out.swap16();
  else if (itemSize === 4) out.swap32();
  else if (itemSize === 8) out.swap64();
  return out;
}

/** The array's bytes as row-major little-endian elements. */
function toStandard(h: NpyHeader, data: Buffer): Buffer {
  let b = h.bigEndian ? swapBytes(data, h.itemSize) : data;
  if (h.fortran && h.shape.length > 1) b = reorder(b, h.shape, h.itemSize, false);
  return b;
}

/** Row-major little-endian elements in the array's own layout. */
function fromStandard(h: NpyHeader, data: Buffer): Buffer {
  let b = h.fortran && h.shape.length > 1 ? reorder(data, h.shape, h.itemSize, true) : data;
  if (h.bigEndian) b = swapBytes(b, h.itemSize);
  return b;
}

function encodingOf(h: NpyHeader, deflated: boolean): string | undefined {
  const parts = [deflated ? 'deflate' : '', h.bigEndian ? 'big-endian' : '', h.fortran && h.shape.length > 1 ? 'fortran-order' : ''].filter(Boolean);
  return parts.length ? `npy:${parts.join('+')}` : undefined;
}

/**
 * The entry for one array. `bytes` holds the array's data when the reader has it in memory
 * (deflated entries); otherwise data is read from `file` at `base + dataOffset` when needed.
 */
function entryFor(name: string, file: string, h: NpyHeader, base: number, deflated: boolean, bytes?: Buffer): TensorEntry {
  const entry: TensorEntry = { name, dtype: h.dtype, shape: h.shape, file, offset: base + h.dataOffset, byteLength: h.byteLength };
  const encoding = encodingOf(h, deflated);
  if (encoding) entry.encoding = encoding;
  if (!isFloatDType(h.dtype)) {
    entry.readOnlyReason = `${h.descr} values (quantized or not weights) are never rewritten`;
    return entry;
  }
  if (encoding) {
    const raw = bytes ?? readRange(file, base + h.dataOffset, h.byteLength);
    entry.decoded = { name, dtype: h.dtype, shape: h.shape, data: typedFromBytes(h.dtype, Buffer.from(toStandard(h, raw))) };
  }
  return entry;
}

// ------------------------------------------------------------------ .npy

function readHead(path: string, size: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const want = Math.min(size, MAX_HEADER + 12);
    const buf = Buffer.alloc(want);
    let done = 0;
    while (done < want) {
      const n = readSync(fd, buf, done, want - done, done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

function stamp(path: string): FileStamp {
  try {
    return stampOf(path);
  } catch (e) {
    return fail(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export function openNpy(path: string): Checkpoint {
  const st = stamp(path);
  const h = parseNpyHeader(readHead(path, st.size), st.size, path);
  const warnings: string[] = [];
  const extra = st.size - h.dataOffset - h.byteLength;
  if (extra > 0) warnings.push(`${extra} bytes after the array's data are ignored`);
  const cp: Checkpoint = { path, format: NPY_FORMAT, tensors: [entryFor(basename(path).replace(/\.npy$/i, ''), path, h, 0, false)], files: [st], warnings, structure: { kind: 'npy', header: h } };
  assertUnchanged(cp);
  return cp;
}

function checkReplacement(cp: Checkpoint, name: string, t: Tensor): TensorEntry {
  const e = cp.tensors.find((x) => x.name === name);
  if (!e) fail(cp.path, `there is no array ${name} to replace`);
  if (e.readOnlyReason) fail(cp.path, `array ${name} cannot be rewritten: ${e.readOnlyReason}`);
  if (t.dtype !== e.dtype) fail(cp.path, `array ${name} is ${e.dtype}; the replacement is ${t.dtype}`);
  const n = e.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n || t.shape.reduce((a, b) => a * b, 1) !== n) fail(cp.path, `array ${name} has shape [${e.shape.join(', ')}]; the replacement has [${t.shape.join(', ')}]`);
  return e;
}

function writeNpy(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  assertUnchanged(cp);
  const h = (cp.structure as { header: NpyHeader }).header;
  const patches = [...changed].map(([name, t]) => {
    checkReplacement(cp, name, t);
    return { offset: h.dataOffset, bytes: fromStandard(h, bytesOf(t)) };
  });
  writePatchedCopy(cp.path, target, patches, {
    backup: opts.backup,
    verify: (tmp) => {
      const size = statSync(tmp).size;
      const again = parseNpyHeader(readHead(tmp, size), size, target);
      for (const p of patches) {
        if (!readRange(tmp, again.dataOffset, again.byteLength).equals(p.bytes)) fail(target, 'the array did not read back as written');
      }
    },
  });
  return [target];
}

// ------------------------------------------------------------------ .npz

/** The .npy bytes of an entry: its header (and, deflated, all of it) and where its data is. */
function npzArray(path: string, e: ZipEntry, budget: { left: number }): { h: NpyHeader; base: number; deflated: boolean; data?: Buffer } {
  const where = `${path} (${e.name})`;
  if (e.method === STORED) {
    const head = readRange(path, e.dataStart, Math.min(e.size, MAX_HEADER + 12));
    return { h: parseNpyHeader(head, e.size, where), base: e.dataStart, deflated: false };
  }
  const all = readZipEntry(path, e, budget.left);
  const h = parseNpyHeader(all, all.length, where);
  if (h.dataOffset + h.byteLength !== all.length) fail(where, `shape [${h.shape.join(', ')}] of ${h.descr} needs ${h.byteLength} bytes of data, but the entry inflates to ${all.length - h.dataOffset} after the header`);
  budget.left -= all.length;
  return { h, base: e.dataStart, deflated: true, data: all.subarray(h.dataOffset, h.dataOffset + h.byteLength) };
}

export function openNpz(path: string): Checkpoint {
  const st = stamp(path);
  const { entries } = readZipFileDirectory(path);
  const tensors: TensorEntry[] = [];
  const warnings: string[] = [];
  const budget = { left: MAX_NPZ_INFLATED_BYTES };
  for (const e of entries) {
    if (!e.name.endsWith('.npy')) {
      if (!e.name.endsWith('/')) warnings.push(`entry ${e.name} is not a .npy array and is kept as it is`);
      continue;
    }
    if (e.method !== STORED && e.size > budget.left) {
      fail(path, `array ${e.name} inflates to ${e.size} bytes; with the arrays before it that is more than the ${MAX_NPZ_INFLATED_BYTES} bytes this reader inflates from one .npz`);
    }
    const { h, base, deflated, data } = npzArray(path, e, budget);
    tensors.push(entryFor(e.name.slice(0, -4), path, h, base, deflated, data));
  }
  if (!tensors.length) fail(path, 'the archive holds no .npy arrays: not an .npz file');
  const cp: Checkpoint = { path, format: NPZ_FORMAT, tensors, files: [st], warnings, structure: { kind: 'npz' } };
  assertUnchanged(cp);
  return cp;
}

/**
 * A new archive: changed arrays re-encoded in their own layout and compressed as before, every
 * other entry copied byte for byte; written beside the target, verified, renamed.
 */
function writeNpz(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  assertUnchanged(cp);
  for (const [name, t] of changed) checkReplacement(cp, name, t);
  const { entries } = readZipFileDirectory(cp.path);
  const expected = new Map<string, Buffer>();
  const items: ZipItem[] = entries.map((e) => {
    const t = e.name.endsWith('.npy') ? changed.get(e.name.slice(0, -4)) : undefined;
    if (!t) return { copy: e, from: cp.path };
    const npy = readZipEntry(cp.path, e);
    const h = parseNpyHeader(npy, npy.length, `${cp.path} (${e.name})`);
    const data = fromStandard(h, bytesOf(t));
    expected.set(e.name, data);
    const body = Buffer.concat([npy.subarray(0, h.dataOffset), data, npy.subarray(h.dataOffset + h.byteLength)]);
    return { name: e.name, method: e.method, data: body, dosTime: e.dosTime, dosDate: e.dosDate };
  });
  writeZipFile(target, items, {
    backup: opts.backup,
    check: (tmp, written) => {
      for (const e of written.entries) {
        const want = expected.get(e.name);
        if (!want) continue;
        const npy = readZipEntry(tmp, e);
        const h = parseNpyHeader(npy, npy.length, `${target} (${e.name})`);
        if (!npy.subarray(h.dataOffset, h.dataOffset + h.byteLength).equals(want)) fail(target, `array ${e.name} did not read back as written`);
      }
    },
  });
  return [target];
}

export const npyFormat: ModelFormat = {
  id: NPY_FORMAT,
  description: 'NumPy array (.npy)',
  extensions: ['npy'],
  sniff: (head) => head.length >= 6 && head.subarray(0, 6).equals(MAGIC),
  statesGraph: false,
  open: openNpy,
  toNetwork: (cp, opts) => stateDictToNetwork(cp, opts),
  write: writeNpy,
};

export const npzFormat: ModelFormat = {
  id: NPZ_FORMAT,
  description: 'NumPy archive (.npz)',
  extensions: ['npz'],
  sniff: (head, path) => {
    const first = firstZipEntryName(head);
    return first !== undefined && (first.endsWith('.npy') || path.toLowerCase().endsWith('.npz'));
  },
  statesGraph: false,
  open: openNpz,
  toNetwork: (cp, opts) => stateDictToNetwork(cp, opts),
  write: writeNpz,
};
