// safetensors: u64 LE header length, a JSON header ({name: {dtype, shape, data_offsets}},
// plus "__metadata__"), then the data area the offsets index. Tensors are byte ranges;
// writing patches the changed ranges in a copy and leaves every other byte as it was.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Tensor } from '../../tensor/tensor';
import { ChangedWhileReading, assertUnchanged, readRange, stampOf, type Checkpoint, type FileStamp, type StoredDType, type TensorEntry } from '../core/checkpoint';
import { writePatchedCopy } from '../core/patch';
import { stateDictToNetwork } from '../stateDict/build';
import { FileError, asFileError, fail } from '../../errors/fileError';
import { tensorPatches, patchesFor, type TensorPatch } from '../core/tensorPatches';
import type { ModelFormat, WriteOptions } from '../core/format';

export const SAFETENSORS_FORMAT = 'safetensors';

/** The reference implementation refuses headers over 100 MB. */
const MAX_HEADER_BYTES = 100_000_000;

/** safetensors dtype → how this project names it, and bytes per element. */
const DTYPES: Record<string, [StoredDType, number]> = {
  F64: ['float64', 8],
  F32: ['float32', 4],
  F16: ['float16', 2],
  BF16: ['bfloat16', 2],
  I64: ['int64', 8],
  I32: ['int32', 4],
  I16: ['int16', 2],
  I8: ['int8', 1],
  U8: ['uint8', 1],
  BOOL: ['bool', 1],
  F8_E4M3: ['float8', 1],
  F8_E5M2: ['float8', 1],
  F8_E8M0: ['float8', 1],
  C64: ['complex64', 8],
  U16: ['other', 2],
  U32: ['other', 4],
  U64: ['other', 8],
};

export interface SafetensorsStructure {
  /** The header's "__metadata__" (string → string), when present. */
  metadata?: Record<string, string>;
  /** Tensor names in data order. */
  keys: string[];
  /** Each tensor's safetensors dtype as written ("BF16"). */
  dtypes: Record<string, string>;
  /** Where the data area starts (8 + header length). */
  dataStart: number;
}

export interface SafetensorsHeader {
  tensors: TensorEntry[];
  structure: SafetensorsStructure;
  warnings: string[];
}

function readExactly(fd: number, position: number, length: number, path: string): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) fail(path, `unexpected end of file at byte ${position + done}`);
    done += n;
  }
  return buf;
}

function dims(path: string, name: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || shape.length > 64) fail(path, `tensor ${name}: "shape" must be a list of at most 64 dimensions`);
  for (const d of shape) if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) fail(path, `tensor ${name} has an impossible shape ${JSON.stringify(shape)}`);
  return shape as number[];
}

/** Parses and checks a header; `fileSize` bounds every range. */
export function parseSafetensorsHeader(path: string, fd: number, fileSize: number): SafetensorsHeader {
  if (fileSize < 8) fail(path, `too short for safetensors (${fileSize} bytes)`);
  const declared = readExactly(fd, 0, 8, path).readBigUInt64LE(0);
  if (declared > BigInt(fileSize - 8)) fail(path, `the header length ${declared} is larger than the file (${fileSize} bytes); the file is truncated or not safetensors`);
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES) fail(path, `the header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const text = readExactly(fd, 8, headerLength, path).toString('utf8');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(path, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail(path, 'the header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataSize = fileSize - dataStart;
  const warnings: string[] = [];
  const tensors: TensorEntry[] = [];
  const dtypes: Record<string, string> = Object.create(null);
  const ranges: { name: string; begin: number; end: number }[] = [];
  let metadata: Record<string, string> | undefined;
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info)) fail(path, '"__metadata__" must be an object of strings');
      metadata = Object.create(null) as Record<string, string>;
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') warnings.push(`metadata ${k} is not a string; kept as JSON text`);
        metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      continue;
    }
    if (info === null || typeof info !== 'object') fail(path, `tensor ${name}: its header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string') fail(path, `tensor ${name} has no "dtype"`);
    const known = DTYPES[dtype];
    if (!known) fail(path, `tensor ${name} has an unknown dtype "${dtype}" (known: ${Object.keys(DTYPES).join(', ')})`);
    const [stored, itemsize] = known;
    const sh = dims(path, name, shape);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) {
      fail(path, `tensor ${name}: "data_offsets" must be two non-negative integers`);
    }
    const [begin, end] = offsets as number[];
    if (begin > end || end > dataSize) fail(path, `tensor ${name}: data_offsets [${begin}, ${end}] lie outside the data area (${dataSize} bytes)`);
    let bytes = itemsize;
    for (const d of sh) bytes *= d;
    if (!Number.isSafeInteger(bytes)) fail(path, `tensor ${name} has an impossible shape [${sh.join(', ')}]`);
    if (bytes !== end - begin) fail(path, `tensor ${name}: shape [${sh.join(', ')}] of ${dtype} needs ${bytes} bytes, but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    dtypes[name] = dtype;
    ranges.push({ name, begin, end });
    tensors.push({ name, dtype: stored, shape: [...sh], file: path, offset: dataStart + begin, byteLength: bytes });
  }
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    if (i > 0 && r.begin < ranges[i - 1].end) fail(path, `tensors ${ranges[i - 1].name} and ${r.name} overlap in the data area`);
    covered += r.end - r.begin;
  }
  if (covered !== dataSize) warnings.push(`${dataSize - covered} bytes of the data area belong to no tensor`);
  const order = new Map(ranges.map((r, i) => [r.name, i]));
  tensors.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
  const structure: SafetensorsStructure = { keys: tensors.map((t) => t.name), dtypes, dataStart };
  if (metadata) structure.metadata = metadata;
  return { tensors, structure, warnings };
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}

export function openSafetensors(path: string): Checkpoint {
  let before: FileStamp;
  try {
    before = stampOf(path);
  } catch (e) {
    throw new FileError(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const changed = (): boolean => {
    try {
      return !sameStamp(stampOf(path), before);
    } catch {
      return true;
    }
  };
  let parsed: SafetensorsHeader;
  try {
    const fd = openSync(path, 'r');
    try {
      parsed = parseSafetensorsHeader(path, fd, fstatSync(fd).size);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if (changed()) throw new ChangedWhileReading(path);
    throw asFileError(path, e);
  }
  if (changed()) throw new ChangedWhileReading(path);
  return { path, format: SAFETENSORS_FORMAT, tensors: parsed.tensors, files: [before], warnings: parsed.warnings, structure: parsed.structure };
}

/** Same header, same tensors at the same places, the new bytes in place. */
function verifyCopy(source: Checkpoint, tmp: string, patches: readonly TensorPatch[]): void {
  let back: Checkpoint;
  try {
    back = openSafetensors(tmp);
  } catch (e) {
    // The temporary file is removed with the failure: name the problem, not that file.
    throw new Error(`the written copy does not read back (${e instanceof FileError ? e.problem : (e as Error).message})`);
  }
  if (back.tensors.length !== source.tensors.length) throw new Error(`the written copy lists ${back.tensors.length} tensors instead of ${source.tensors.length}`);
  const headerLength = (source.structure as SafetensorsStructure).dataStart;
  if (!readRange(tmp, 0, headerLength).equals(readRange(source.path, 0, headerLength))) throw new Error('the written copy has a different header');
  for (const p of patches) if (!readRange(tmp, p.offset, p.bytes.length).equals(p.bytes)) throw new Error(`tensor ${p.name} does not read back from the written copy`);
}

/** Patches one safetensors file (a whole checkpoint, or one shard of a sharded one). */
export function writeSafetensorsFile(cp: Checkpoint, file: string, patches: readonly TensorPatch[], target: string, opts: WriteOptions = {}): void {
  const single: Checkpoint = file === cp.path ? cp : openSafetensors(file);
  // Only this file's stamp matters here: earlier shards of an in-place write were replaced on purpose.
  const stamped: Checkpoint = { ...cp, files: cp.files.filter((f) => f.path === file) };
  try {
    assertUnchanged(stamped);
    writePatchedCopy(file, target, patchesFor(file, patches), {
      backup: opts.backup,
      fixup: () => assertUnchanged(stamped),
      verify: (tmp) => verifyCopy(single, tmp, patchesFor(file, patches)),
    });
  } catch (e) {
    throw asFileError(target, e);
  }
}

export const safetensorsFormat: ModelFormat = {
  id: SAFETENSORS_FORMAT,
  description: 'safetensors',
  extensions: ['safetensors'],
  sniff(head) {
    if (head.length < 9) return false;
    const n = head.readBigUInt64LE(0);
    return n >= 2n && n <= BigInt(MAX_HEADER_BYTES) && head[8] === 0x7b;
  },
  statesGraph: false,
  open: openSafetensors,
  toNetwork: (cp, opts) => stateDictToNetwork(cp, opts),
  write(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts?: WriteOptions): string[] {
    assertUnchanged(cp);
    writeSafetensorsFile(cp, cp.path, tensorPatches(cp, changed), target, opts);
    return [target];
  },
};
