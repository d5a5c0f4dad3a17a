// Sharded safetensors (Hugging Face style): `<name>.safetensors.index.json` maps each tensor
// to a shard file beside it. Reading gives every shard's tensors as one checkpoint; writing
// gives a new index plus a patched copy of every shard, named after the new index.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, sep } from 'node:path';
import type { Tensor } from '../../tensor/tensor';
import { ChangedWhileReading, assertUnchanged, stampOf, type Checkpoint, type TensorEntry } from '../core/checkpoint';
import { stateDictToNetwork } from '../stateDict/build';
import { FileError, asFileError, fail } from '../../errors/fileError';
import { tensorPatches } from '../core/tensorPatches';
import type { ModelFormat, WriteOptions } from '../core/format';
import { notACommit, processAlive, testPause, writeFileSafely } from '../core/safeWrite';
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

/** The tag of shards written beside an index that already exists: `<stem>.synbal-PID-TIME-…`. */
const SHARD_MARK = '.synbal-';
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** "<stem>-00001-of-00002.safetensors" → "<stem>.synbal-PID-TIME-00001-of-00002.safetensors". */
function markedShardName(stem: string, plain: string, tag: string): string {
  return `${stem}${SHARD_MARK}${tag}-${plain.slice(stem.length + 1)}`;
}

/**
 * Writes a balanced set: every shard under a name no existing file has (plain names for a new
 * set, `<stem>.synbal-PID-TIME-0000k-of-0000n.safetensors` when the index or a plain name is
 * already there: an in-place write, or a second write to one output), then the new index,
 * renamed over the old one last. That rename is the commit point: killed before it, the old
 * index still names the old shards, untouched; after it, the new index names only new shards.
 * Shards that no index (nor its `.bak`) names any more are removed after the commit, and by the
 * next write when a run was killed (`tidySafetensorsIndex`). With `backup`, the old index is
 * kept as `.bak`, and the old shards it names stay as they were.
 */
export function writeSafetensorsIndex(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  assertUnchanged(cp);
  const structure = cp.structure as SafetensorsIndexStructure;
  const patches = tensorPatches(cp, changed);
  const stem = stemOf(target);
  const folder = dirname(target);
  // Staged (writeChecked.ts): names are chosen against the folder the files will be moved to.
  const finalFolder = opts.finalFolder ?? folder;
  const finalTarget = join(finalFolder, basename(target));
  const sourceFolder = dirname(cp.path);
  const plain = structure.shards.map((s, i) => shardTargetName(stem, basename(s.file), i, structure.shards.length));
  if (new Set(plain).size !== plain.length) throw new FileError(target, `two shards would get the same name`);
  const taken = existsSync(finalTarget) || plain.some((n) => existsSync(join(finalFolder, n)));
  const tag = `${process.pid}-${Date.now()}`;
  const renamed = new Map<string, string>();
  structure.shards.forEach((s, i) => renamed.set(s.file, taken ? markedShardName(stem, plain[i], tag) : plain[i]));
  const former = opts.finalFolder ? [] : indexedShards(target);
  if (!opts.finalFolder) tidySafetensorsIndex(target);

  const written: string[] = [];
  try {
    // Read before anything is replaced.
    const doc = readIndex(cp.path).raw;
    structure.shards.forEach((s, i) => {
      const out = join(folder, renamed.get(s.file)!);
      if (existsSync(out)) throw new FileError(target, `shard ${basename(out)} already exists`);
      written.push(out);
      notACommit(() => writeSafetensorsFile(cp, join(sourceFolder, s.file), patches, out));
      testPause(`shard-${i + 1}`);
    });
    const weightMap: Record<string, string> = {};
    for (const [k, v] of Object.entries(structure.weightMap)) weightMap[k] = renamed.get(v)!;
    const text = JSON.stringify({ ...doc, weight_map: weightMap }, null, 2) + '\n';
    if (!opts.finalFolder) testPause('before-commit');
    writeFileSafely(target, Buffer.from(text, 'utf8'), {
      backup: opts.backup,
      verify: (tmp) => {
        const back = readIndex(tmp);
        if (back.weightMap.size !== Object.keys(weightMap).length) throw new FileError(target, `the written index does not read back`);
      },
    });
  } catch (e) {
    // Nothing was committed: the new shards go, the old set is as it was.
    for (const f of written) rmSync(f, { force: true });
    throw e;
  }
  if (!opts.finalFolder) {
    testPause('after-commit');
    tidySafetensorsIndex(target, former);
  }
  return [target, ...structure.shards.map((s) => join(folder, renamed.get(s.file)!))];
}

/** The shard files an index names (none when it is missing or unreadable). */
function indexedShards(index: string): string[] {
  if (!existsSync(index)) return [];
  try {
    return [...new Set(readIndex(index).weightMap.values())].map((f) => join(dirname(index), f));
  } catch {
    return [];
  }
}

/**
 * Removes, beside the index `target`, the files no committed set names: this tool's marked
 * shards (`<stem>.synbal-PID-TIME-…`) of a run that is gone (or of this process: the caller
 * holds the target's lock), the `formerFiles` a commit just replaced, and shard temporaries
 * `.<stem>….safetensors.PID.TIME.tmp` of dead processes. A file the index or its `.bak` names is
 * kept; an index that cannot be read keeps everything. Returns the paths removed.
 */
export function tidySafetensorsIndex(target: string, formerFiles: readonly string[] = []): string[] {
  let stem: string;
  try {
    stem = stemOf(target);
  } catch {
    return [];
  }
  const folder = dirname(target);
  const named = new Set<string>();
  for (const index of [target, `${target}.bak`]) {
    if (!existsSync(index)) continue;
    try {
      for (const f of readIndex(index).weightMap.values()) named.add(join(folder, f));
    } catch {
      return [];
    }
  }
  const marked = new RegExp(`^${escapeRe(stem)}${escapeRe(SHARD_MARK)}(\\d+)-\\d+-\\d+-of-\\d+\\.safetensors$`);
  const temporary = new RegExp(`^\\.${escapeRe(stem)}[-.].*\\.safetensors\\.(\\d+)\\.\\d+\\.tmp$`);
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  const doomed = new Set<string>();
  for (const n of names) {
    const m = marked.exec(n);
    if (m && (Number(m[1]) === process.pid || !processAlive(Number(m[1])))) doomed.add(join(folder, n));
    const t = temporary.exec(n);
    if (t && !processAlive(Number(t[1]))) doomed.add(join(folder, n));
  }
  // Files the replaced index named, when they carry this tool's names for the set (never
  // someone else's files an overwritten index happened to name).
  const ours = new RegExp(`^${escapeRe(stem)}(?:${escapeRe(SHARD_MARK)}\\d+-\\d+)?-\\d+-of-\\d+\\.safetensors$`);
  for (const f of formerFiles) if (dirname(f) === folder && ours.test(basename(f))) doomed.add(f);
  const removed: string[] = [];
  for (const f of doomed) {
    if (named.has(f) || !existsSync(f)) continue;
    rmSync(f, { force: true });
    removed.push(f);
  }
  return removed;
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
  filesOf: indexedShards,
  tidy: tidySafetensorsIndex,
};
