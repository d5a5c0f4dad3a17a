// TensorFlow.js models: `model.json` (layers-model: a Keras topology; graph-model: TF ops) with
// a weights manifest whose groups are the concatenation of the weights' little-endian bytes,
// split across shard files — also the same JSON and a base64 shard wrapped in JavaScript
// modules, as npm packages ship them (read without running the scripts). float32 weights are
// byte ranges of the shards; quantized ones (uint8/uint16 with scale and min, float16) are
// dequantized on read and never written back.
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { float16Table } from '../../tensor/dtype';
import { numel } from '../../tensor/tensor';
import { assertUnchanged, readRange, stampOf, typedFromBytes, type Checkpoint, type FileStamp, type StoredDType, type TensorEntry } from '../core/checkpoint';
import { parseModelConfig } from '../keras/config';
import type { KerasStructure, KerasWeight } from '../keras/structure';
import { variableRoles } from '../keras/variables';
import { findObjectWithKey, largestBase64String, LiteralError } from './jsLiteral';
import { FileError, asFileError } from '../../errors/fileError';

export const TFJS_FORMAT = 'tfjs';

type Json = Record<string, unknown>;

export interface TfjsPiece {
  /** Index into TfjsInfo.shards. */
  shard: number;
  offset: number;
  length: number;
}

export interface TfjsShard {
  /** As the manifest writes it. */
  manifestPath: string;
  /** The file it was found in. */
  file: string;
  /** Base64 inside a JavaScript module (the decoded bytes; not written back). */
  wrapped: boolean;
}

export interface TfjsWeightLayout {
  name: string;
  group: number;
  pieces: TfjsPiece[];
}

export interface TfjsInfo {
  /** layers-model or graph-model. */
  modelFormat: string;
  /** The model JSON came out of a JavaScript module. */
  wrapped: boolean;
  /** The parsed model JSON (written back with the shard paths renamed); a bare weights manifest is a list. */
  json: Json | unknown[];
  shards: TfjsShard[];
  /** Shard indices of each manifest group, in order. */
  groups: number[][];
  layout: TfjsWeightLayout[];
  /** The values of small int32 weights (graph constants: paddings, axes, sizes), by name. */
  ints: Record<string, number[]>;
}

/** A layers model: the Keras structure kerasToNetwork reads, plus where the bytes are. */
export interface TfjsLayersStructure extends KerasStructure {
  tfjs: TfjsInfo;
}

export interface TfjsGraphNode {
  name: string;
  op: string;
  input: string[];
  attr: Json;
}

export interface TfjsGraphStructure {
  kind: 'tfjs-graph';
  nodes: TfjsGraphNode[];
  tfjs: TfjsInfo;
}

/** A weights manifest without a topology (face-api.js's `*-weights_manifest.json`): a state dict. */
export interface TfjsWeightsStructure {
  kind: 'tfjs-weights';
  tfjs: TfjsInfo;
}

export type TfjsStructure = TfjsLayersStructure | TfjsGraphStructure | TfjsWeightsStructure;

/** The format id of a weights manifest without a topology. */
export const TFJS_WEIGHTS_FORMAT = 'tfjs-weights';

export function tfjsInfoOf(cp: Checkpoint): TfjsInfo {
  const s = cp.structure as Partial<TfjsLayersStructure> | undefined;
  if ((cp.format !== TFJS_FORMAT && cp.format !== TFJS_WEIGHTS_FORMAT) || !s?.tfjs) throw new FileError(cp.path, `not a TensorFlow.js model checkpoint (format ${cp.format})`);
  return s.tfjs;
}

class TfjsError extends Error {}

function bad(what: string): never {
  throw new TfjsError(what);
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const MANIFEST_DTYPES: Record<string, { stored: StoredDType; bytes: number }> = {
  float32: { stored: 'float32', bytes: 4 },
  int32: { stored: 'int32', bytes: 4 },
  bool: { stored: 'bool', bytes: 1 },
  complex64: { stored: 'complex64', bytes: 8 },
};
const QUANT_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

const MAX_ELEMENTS = 2 ** 31;

export function isJsModulePath(path: string): boolean {
  return /\.(?:m|c)?js$/i.test(path);
}

/** Reads the model JSON (parsing it out of a script when the file is JavaScript). */
function modelJson(path: string): { json: Json | unknown[]; wrapped: boolean } {
  const text = readFileSync(path, 'utf8');
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let list: unknown;
    try {
      list = JSON.parse(trimmed);
    } catch (e) {
      return bad(`not valid JSON (${(e as Error).message})`);
    }
    return { json: list as unknown[], wrapped: false };
  }
  if (trimmed.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (e) {
      return bad(`not valid JSON (${(e as Error).message})`);
    }
    if (!isObject(json)) bad('the model JSON is not an object');
    return { json, wrapped: false };
  }
  let found: Json | undefined;
  try {
    found = findObjectWithKey(text, 'modelTopology') ?? findObjectWithKey(text, 'weightsManifest');
  } catch (e) {
    if (e instanceof LiteralError) bad(`the script's model literal cannot be read (${e.message})`);
    throw e;
  }
  if (!found) bad('a script without a TensorFlow.js model literal (no object with "modelTopology")');
  return { json: found, wrapped: true };
}

/**
 * A manifest path as a path relative to the model's folder, refused when it could leave the
 * folder: absolute (`/etc/x`, `C:\x`, `\\server\x`), or with a `..` segment — as written or once
 * percent-decoded (`%2e%2e%2f`, `..%2F`), with `/` or a backslash as separators. Shards are read from
 * here and copied beside the balanced model, so an escape would copy any file into the output.
 */
export function confinedShardPath(p: string): string {
  let clean: string;
  try {
    clean = decodeURIComponent(p.split(/[?#]/)[0]);
  } catch {
    return bad(`weights path ${p} is not a valid percent-encoded path`);
  }
  const leaves = (q: string) => /^[\\/]/.test(q) || /^[a-z]:/i.test(q) || q.split(/[\\/]+/).includes('..') || isAbsolute(q);
  if (clean.includes('\0')) bad(`weights path ${p} contains a NUL character`);
  if (clean === '' || leaves(p) || leaves(clean)) bad(`weights path ${p} points outside the model's folder; refused`);
  return clean;
}

/** Finds a manifest path's file: as written, or the JavaScript module a bundler made of it. */
function resolveShard(dir: string, p: string): { file: string; wrapped: boolean } {
  if (typeof p !== 'string' || p === '') bad('a weights manifest path is not a string');
  if (/^[a-z]+:\/\//i.test(p)) bad(`weights path ${p} is a URL; only local files are read`);
  const base = join(dir, confinedShardPath(p));
  for (const cand of [base, `${base}.min.js`, `${base}.js`, `${base}.bin`]) {
    try {
      if (statSync(cand).isFile()) return { file: cand, wrapped: isJsModulePath(cand) };
    } catch {
      // next candidate
    }
  }
  return bad(`weights shard ${p} not found (looked for ${basename(base)} beside the model file)`);
}

interface Spec {
  name: string;
  shape: number[];
  dtype: string;
  quant?: { dtype: string; scale: number; min: number };
  bytes: number;
  elements: number;
}

function parseSpec(w: unknown, g: number, i: number): Spec {
  if (!isObject(w)) bad(`weights manifest group ${g} entry ${i} is not an object`);
  const name = typeof w.name === 'string' ? w.name : bad(`weights manifest group ${g} entry ${i} has no name`);
  const shape = Array.isArray(w.shape) && w.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) ? (w.shape as number[]) : bad(`weight ${name} has an invalid shape ${JSON.stringify(w.shape)}`);
  const elements = numel(shape);
  if (elements > MAX_ELEMENTS) bad(`weight ${name} has an impossible shape [${shape.join(', ')}]`);
  const dtype = typeof w.dtype === 'string' ? w.dtype : bad(`weight ${name} has no dtype`);
  let quant: Spec['quant'];
  if (w.quantization !== undefined && w.quantization !== null) {
    const q = w.quantization;
    if (!isObject(q) || typeof q.dtype !== 'string' || !(q.dtype in QUANT_BYTES)) bad(`weight ${name} has an unknown quantization ${JSON.stringify(q)} (known: uint8, uint16, float16)`);
    if (q.dtype !== 'float16' && (typeof q.scale !== 'number' || typeof q.min !== 'number')) bad(`weight ${name} is quantized to ${q.dtype} without numeric scale and min`);
    quant = { dtype: q.dtype, scale: Number(q.scale ?? 1), min: Number(q.min ?? 0) };
  }
  if (!(dtype in MANIFEST_DTYPES)) bad(`weight ${name} has dtype ${dtype}, which this reader does not know (known: ${Object.keys(MANIFEST_DTYPES).join(', ')})`);
  const bytes = elements * (quant ? QUANT_BYTES[quant.dtype] : MANIFEST_DTYPES[dtype].bytes);
  return { name, shape, dtype, quant, bytes, elements };
}

function dequantize(spec: Spec, raw: Buffer): Float32Array {
  const q = spec.quant!;
  const out = new Float32Array(spec.elements);
  if (q.dtype === 'float16') {
    const t = float16Table();
    for (let i = 0; i < out.length; i++) out[i] = t[raw.readUInt16LE(2 * i)];
  } else if (q.dtype === 'uint8') {
    for (let i = 0; i < out.length; i++) out[i] = raw[i] * q.scale + q.min;
  } else {
    for (let i = 0; i < out.length; i++) out[i] = raw.readUInt16LE(2 * i) * q.scale + q.min;
  }
  return out;
}

function assign(model: ReturnType<typeof parseModelConfig>, names: string[], warnings: string[]): KerasWeight[] {
  const layerNames = model.layers.map((l) => l.name).sort((a, b) => b.length - a.length);
  const weights: KerasWeight[] = [];
  for (const n of names) {
    const plain = n.replace(/:\d+$/, '');
    // The longest layer name that is a leading path segment (or any segment, for nested scopes).
    const layer = layerNames.find((l) => plain.startsWith(`${l}/`)) ?? layerNames.find((l) => plain.includes(`/${l}/`));
    if (!layer) {
      warnings.push(`weight ${n} belongs to no layer of the topology; it is kept as it is`);
      continue;
    }
    const role = plain.slice(plain.lastIndexOf('/') + 1);
    weights.push({ layer, role, tensor: n, dataset: n });
  }
  for (const l of model.layers) {
    const expected = variableRoles(l.className, l.config);
    if (!expected) continue;
    const have = weights.filter((w) => w.layer === l.name).map((w) => w.role);
    for (const r of expected) if (!have.includes(r)) bad(`layer ${l.name} (${l.className}) needs a "${r}" weight, which the weights manifest does not list`);
  }
  return weights;
}

function parseGraphNodes(topo: Json): TfjsGraphNode[] {
  const nodes = Array.isArray(topo.node) ? topo.node : bad('the graph model has no "node" list');
  return nodes.map((n, i) => {
    if (!isObject(n) || typeof n.name !== 'string' || typeof n.op !== 'string') bad(`graph node ${i} has no name or op`);
    return { name: n.name, op: n.op, input: Array.isArray(n.input) ? n.input.map(String) : [], attr: isObject(n.attr) ? n.attr : {} };
  });
}

function readTfjs(path: string): Checkpoint {
  const files: FileStamp[] = [stampOf(path)];
  const { json: parsed, wrapped } = modelJson(path);
  const bare = Array.isArray(parsed);
  const json: Json = bare ? { weightsManifest: parsed } : parsed;
  const modelFormat = bare ? 'weights-manifest' : typeof json.format === 'string' ? json.format : isObject(json.modelTopology) && Array.isArray(json.modelTopology.node) ? 'graph-model' : 'layers-model';
  if (!bare && modelFormat !== 'layers-model' && modelFormat !== 'graph-model') bad(`format "${modelFormat}" is neither layers-model nor graph-model`);
  const topo = bare ? {} : isObject(json.modelTopology) ? json.modelTopology : bad('the model JSON has no "modelTopology" object');
  const manifest = json.weightsManifest === undefined ? [] : Array.isArray(json.weightsManifest) ? json.weightsManifest : bad('"weightsManifest" is not a list');
  const dir = dirname(path);
  const shards: TfjsShard[] = [];
  const groups: number[][] = [];
  const layout: TfjsWeightLayout[] = [];
  const tensors: TensorEntry[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  const ints: Record<string, number[]> = {};
  manifest.forEach((group, g) => {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) bad(`weights manifest group ${g} has no "paths" and "weights" lists`);
    // The group's files, each with its size (wrapped shards decoded in memory).
    const ids: number[] = [];
    const sizes: number[] = [];
    const memory = new Map<number, Buffer>();
    for (const p of group.paths as string[]) {
      const { file, wrapped: w } = resolveShard(dir, p);
      const id = shards.length;
      shards.push({ manifestPath: p, file, wrapped: w });
      files.push(stampOf(file));
      ids.push(id);
      if (w) {
        const bytes = largestBase64String(readFileSync(file, 'utf8'));
        if (!bytes) bad(`weights shard ${file} is a script without a base64 string`);
        memory.set(id, bytes);
        sizes.push(bytes.length);
      } else sizes.push(files[files.length - 1].size);
    }
    groups.push(ids);
    const specs = (group.weights as unknown[]).map((w, i) => parseSpec(w, g, i));
    const need = specs.reduce((a, s) => a + s.bytes, 0);
    const have = sizes.reduce((a, b) => a + b, 0);
    if (need > have) bad(`weights manifest group ${g} lists ${need} bytes of weights but its shards (${(group.paths as string[]).join(', ')}) hold ${have} bytes: truncated or not these weights`);
    if (need < have) warnings.push(`weights manifest group ${g}: the shards hold ${have - need} bytes more than the listed weights; they are not read`);
    const starts: number[] = [];
    sizes.reduce((a, b, i) => ((starts[i] = a), a + b), 0);
    const readPieces = (pieces: TfjsPiece[]): Buffer =>
      Buffer.concat(pieces.map((q) => memory.get(q.shard)?.subarray(q.offset, q.offset + q.length) ?? readExact(shards[q.shard].file, q.offset, q.length)));
    let at = 0;
    for (const s of specs) {
      if (seen.has(s.name)) bad(`two weights are both named ${s.name}`);
      seen.add(s.name);
      const pieces: TfjsPiece[] = [];
      for (let i = 0, left = s.bytes, pos = at; i < ids.length && left > 0; i++) {
        if (pos >= starts[i] + sizes[i]) continue;
        const off = pos - starts[i];
        const len = Math.min(left, sizes[i] - off);
        pieces.push({ shard: ids[i], offset: off, length: len });
        pos += len;
        left -= len;
      }
      at += s.bytes;
      layout.push({ name: s.name, group: g, pieces });
      const first = pieces[0] ?? { shard: ids[0] ?? 0, offset: 0, length: 0 };
      const file = shards[first.shard]?.file ?? path;
      const inMemory = pieces.some((q) => memory.has(q.shard));
      const entry: TensorEntry = { name: s.name, dtype: MANIFEST_DTYPES[s.dtype].stored, shape: [...s.shape], file, offset: first.offset, byteLength: s.bytes };
      if (s.quant) {
        entry.dtype = s.dtype === 'float32' ? 'float32' : entry.dtype;
        entry.encoding = `tfjs-${s.quant.dtype}`;
        if (s.dtype === 'float32') entry.decoded = { name: s.name, dtype: 'float32', shape: [...s.shape], data: dequantize(s, readPieces(pieces)) };
        entry.readOnlyReason = `quantized to ${s.quant.dtype}: not written back`;
      } else if (s.dtype !== 'float32') {
        if (s.dtype === 'int32' && s.elements <= 64) {
          const b = readPieces(pieces);
          ints[s.name] = Array.from({ length: s.elements }, (_, i) => b.readInt32LE(4 * i));
        }
        entry.readOnlyReason = `${s.dtype} values are never rewritten`;
      } else if (pieces.length > 1 || inMemory) {
        // Split across shards, or inside a script: decoded now.
        entry.encoding = inMemory ? 'tfjs-base64' : 'tfjs-split';
        entry.decoded = { name: s.name, dtype: 'float32', shape: [...s.shape], data: typedFromBytes('float32', readPieces(pieces)) };
      }
      if (inMemory && !entry.readOnlyReason) entry.readOnlyReason = 'stored as base64 inside a JavaScript module: not written back';
      tensors.push(entry);
    }
  });
  const info: TfjsInfo = { modelFormat, wrapped, json: parsed, shards, groups, layout, ints };
  let structure: TfjsStructure;
  if (bare) {
    structure = { kind: 'tfjs-weights', tfjs: info };
  } else if (modelFormat === 'layers-model') {
    const config = isObject(topo.model_config) ? topo.model_config : topo;
    const model = parseModelConfig(config, path);
    const weights = assign(model, tensors.map((t) => t.name), warnings);
    const kv = typeof topo.keras_version === 'string' ? topo.keras_version : undefined;
    structure = { kind: 'keras', model, weights, kerasVersion: kv ?? 'tfjs-layers', backend: typeof topo.backend === 'string' ? topo.backend : undefined, tfjs: info };
  } else {
    structure = { kind: 'tfjs-graph', nodes: parseGraphNodes(topo), tfjs: info };
  }
  const cp: Checkpoint = { path, format: bare ? TFJS_WEIGHTS_FORMAT : TFJS_FORMAT, tensors, files, warnings, structure };
  return cp;
}

function readExact(file: string, offset: number, length: number): Buffer {
  return readRange(file, offset, length);
}

/** Opens a TF.js model file; every error starts with its path. */
export function openTfjs(path: string): Checkpoint {
  try {
    const cp = readTfjs(path);
    assertUnchanged(cp);
    return cp;
  } catch (e) {
    throw asFileError(path, e);
  }
}

/** Whether a file's first bytes (and, for scripts, more of it) look like a TF.js model. */
export function sniffTfjs(head: Buffer, path: string): boolean {
  const text = head.toString('utf8');
  if (text.trimStart().startsWith('{')) {
    return /"(?:modelTopology|weightsManifest)"\s*:/.test(text) || /"format"\s*:\s*"(?:layers|graph)-model"/.test(text);
  }
  if (!isJsModulePath(path)) return false;
  try {
    const more = readFileSync(path).subarray(0, 1 << 20).toString('utf8');
    return /\bmodelTopology["']?\s*:/.test(more) && /\bweightsManifest["']?\s*:/.test(more);
  } catch {
    return false;
  }
}

/** A JSON list of manifest groups (`[{"paths": [...], "weights": [...]}]`): weights without a topology. */
export function sniffTfjsWeights(head: Buffer): boolean {
  const text = head.toString('utf8').trimStart();
  return text.startsWith('[') && /"weights"\s*:/.test(text) && /"(?:paths|name)"\s*:/.test(text) && /"shape"\s*:/.test(text);
}
