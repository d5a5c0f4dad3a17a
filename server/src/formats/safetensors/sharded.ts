// Sharded safetensors (Hugging Face style): `<name>.safetensors.index.json` maps each tensor
// to a shard file beside it. Reading gives every shard's tensors as one checkpoint; writing
// gives a new index plus a patched copy of every shard, named after the new index.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, sep } from 'node:path';
import type { Tensor } from '../../tensor/tensor';
import { ChangedWhileReading, assertUnchanged, stampOf, type Checkpoint, type TensorEntry } from '../core/checkpoint';
import { stateDictToNetwork } from '../stateDict/build';
import { FileError, asFileError, fail } from '../../errors/fileError';
import { tensorPatches } from '../core/tensorPatches';
import type { ModelFormat, WriteOptions } from '../core/format';
import { writeFileSafely } from '../core/safeWrite';
import { openSafetensors, writeSafetensorsFile, type SafetensorsStructure } from './index';

export const SAFETENSORS_INDEX_FORMAT = 'safetensors-index';
const INDEX_SUFFIX = '.safetensors.index.json';
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

export interface SafetensorsIndexStructure {
  /** The index's own "metadata" object (total_size …). */
  metadata?: Record<string, unknown>;
  /** Tensor name → shard file name, as the index states it. */
  weightMap: Record<string, string>;
  /** Shard file names in first-use order, each with its own header metadata. */
  shards: { file: string; metadata?: Record<string, string> }[];
  /** Tensor names in index order. */
  keys: string[];
}

interface IndexDoc {
  raw: Record<string, unknown>;
  weightMap: Map<string, string>;
}

function readIndex(path: string): IndexDoc {
  let text: string;
  try {
    const size = stampOf(path).size;
    if (size > MAX_INDEX_BYTES) fail(path, `the index is ${size} bytes, more than ${MAX_INDEX_BYTES}`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw asFileError(path, e);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(path, `not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, 'the index is not a JSON object');
  const wm = (raw as Record<string, unknown>).weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) fail(path, 'the index has no "weight_map" object');
  const weightMap = new Map<string, string>();
  for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof file !== 'string' || file === '') fail(path, `weight_map entry ${name} is not a file name`);
    // Shards live beside the index; a path that climbs out of its folder is refused.
    const norm = normalize(file);
    if (isAbsolute(file) || norm.startsWith('..' + sep) || norm === '..') fail(path, `weight_map entry ${name} points outside the index's folder (${file})`);
    weightMap.set(name, file);
  }
  return { raw: raw as Record<string, unknown>, weightMap };
}

export function openSafetensorsIndex(path: string): Checkpoint {
  const stamp = (() => {
    try {
      return stampOf(path);
    } catch (e) {
      throw new FileError(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  })();
  const doc = readIndex(path);
  const folder = dirname(path);
  const shardFiles = [...new Set(doc.weightMap.values())];
  if (shardFiles.length === 0) fail(path, 'the weight_map lists no tensors');
  const shards = shardFiles.map((file) => {
    const full = join(folder, file);
    if (!existsSync(full)) fail(path, `shard ${file} (named in weight_map) does not exist`);
    try {
      return { file, cp: openSafetensors(full) };
    } catch (e) {
      if (e instanceof ChangedWhileReading) throw e;
      throw new FileError(path, `shard ${(e as Error).message}`);
    }
  });
  const byShard = new Map(shards.map((s) => [s.file, s.cp]));
  const tensors: TensorEntry[] = [];
  const warnings: string[] = [];
  const listed = new Set<string>();
  for (const [name, file] of doc.weightMap) {
    const entry = byShard.get(file)!.tensors.find((t) => t.name === name);
    if (!entry) fail(path, `tensor ${name} is mapped to shard ${file}, which does not contain it`);
    tensors.push(entry);
    listed.add(name);
  }
  for (const s of shards) {
    for (const t of s.cp.tensors) {
      if (listed.has(t.name)) continue;
      if (tensors.some((x) => x.name === t.name)) fail(path, `tensor ${t.name} appears in more than one shard`);
      warnings.push(`tensor ${t.name} is in shard ${s.file} but not in the weight_map; it is included`);
      tensors.push(t);
    }
    warnings.push(...s.cp.warnings.map((w) => `${s.file}: ${w}`));
  }
  const weightMap: Record<string, string> = Object.create(null);
  for (const [k, v] of doc.weightMap) weightMap[k] = v;
  const structure: SafetensorsIndexStructure = {
    weightMap,
    shards: shards.map((s) => {
      const meta = (s.cp.structure as SafetensorsStructure).metadata;
      return meta ? { file: s.file, metadata: meta } : { file: s.file };
    }),
    keys: tensors.map((t) => t.name),
  };
  const meta = doc.raw.metadata;
  if (meta !== null && typeof meta === 'object' && !Array.isArray(meta)) structure.metadata = meta as Record<string, unknown>;
  const after = stampOf(path);
  if (after.size !== stamp.size || after.mtimeMs !== stamp.mtimeMs) throw new ChangedWhileReading(path);
  return { path, format: SAFETENSORS_INDEX_FORMAT, tensors, files: [stamp, ...shards.flatMap((s) => s.cp.files)], warnings, structure };
}

/** "x.balanced.safetensors.index.json" → "x.balanced". */
function stemOf(target: string): string {
  const base = basename(target);
  if (base.endsWith(INDEX_SUFFIX)) return base.slice(0, -INDEX_SUFFIX.length);
  if (base.endsWith('.index.json')) return base.slice(0, -'.index.json'.length);
  throw new FileError(target, `a sharded checkpoint's target must end in ${INDEX_SUFFIX}`);
}

/** Shard names follow the new index: "<stem>-00001-of-00002.safetensors". */
export function shardTargetName(stem: string, shard: string, index: number, count: number): string {
  const m = /-(\d+)-of-(\d+)\.safetensors$/.exec(shard);
  if (m) return `${stem}-${m[1]}-of-${m[2]}.safetensors`;
  const width = Math.max(5, String(count).length);
  return `${stem}-${String(index + 1).padStart(width, '0')}-of-${String(count).padStart(width, '0')}.safetensors`;
}

export function writeSafetensorsIndex(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  assertUnchanged(cp);
  const structure = cp.structure as SafetensorsIndexStructure;
  const patches = tensorPatches(cp, changed);
  const stem = stemOf(target);
  const folder = dirname(target);
  const sourceFolder = dirname(cp.path);
  const renamed = new Map<string, string>();
  structure.shards.forEach((s, i) => renamed.set(s.file, shardTargetName(stem, basename(s.file), i, structure.shards.length)));
  const targets = new Set([...renamed.values()].map((n) => join(folder, n)));
  if (targets.size !== renamed.size) throw new FileError(target, `two shards would get the same name`);

  const written: string[] = [];
  try {
    // Read before any shard is replaced: an in-place write renames over the sources.
    const doc = readIndex(cp.path).raw;
    for (const s of structure.shards) {
      const out = join(folder, renamed.get(s.file)!);
      const existed = existsSync(out);
      writeSafetensorsFile(cp, join(sourceFolder, s.file), patches, out, opts);
      if (!existed) written.push(out);
    }
    const weightMap: Record<string, string> = {};
    for (const [k, v] of Object.entries(structure.weightMap)) weightMap[k] = renamed.get(v)!;
    const text = JSON.stringify({ ...doc, weight_map: weightMap }, null, 2) + '\n';
    writeFileSafely(target, Buffer.from(text, 'utf8'), {
      backup: opts.backup,
      verify: (tmp) => {
        const back = readIndex(tmp);
        if (back.weightMap.size !== Object.keys(weightMap).length) throw new FileError(target, `the written index does not read back`);
      },
    });
  } catch (e) {
    // Leave no half set of shards behind; shards that replaced existing files keep their .bak.
    for (const f of written) rmSync(f, { force: true });
    throw e;
  }
  return [target, ...structure.shards.map((s) => join(folder, renamed.get(s.file)!))];
}

export const safetensorsIndexFormat: ModelFormat = {
  id: SAFETENSORS_INDEX_FORMAT,
  description: 'sharded safetensors (*.safetensors.index.json)',
  extensions: ['json'],
  sniff: (head, path) => {
    if (!path.endsWith('.index.json')) return false;
    const text = head.toString('utf8');
    return text.includes('"weight_map"') && text.includes('.safetensors"');
  },
  statesGraph: false,
  open: openSafetensorsIndex,
  toNetwork: (cp, opts) => stateDictToNetwork(cp, opts),
  write: writeSafetensorsIndex,
};
