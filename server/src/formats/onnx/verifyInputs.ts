// Input sizes for a verification run. A dynamic dimension filled with a tiny number can make both
// models output a constant (a detector on a 2×2 image), and then the check proves nothing. Open
// dimensions are filled, in this order of preference, from: the user's --input-shape; the model's
// metadata_props (`input_shape`, `<input>.shape`…); the sizes the graph itself needs (a Gemm after
// a Flatten fixes the image size: found by shape inference over candidate sizes); the defaults
// below (batch 1, 224 per spatial axis of a 4-D input, sequences 64 long).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { GraphView } from './graphView';
import { inferShapes } from './shapes';
import { isNumber, num, type Dim } from './dims';
import { attrInt } from './attrs';
import { onnxStructure } from './reader';
import type { Checkpoint } from '../core/checkpoint';
import type { NodeRecord } from './proto';

/** Sizes given to open dimensions when nothing else decides. */
export const DEFAULT_BATCH = 1;
export const DEFAULT_IMAGE_SIZE = 224;
export const DEFAULT_SEQUENCE_LENGTH = 64;
/** Per axis for 5-D and larger inputs (video, volumes), where 224³ would be huge. */
export const DEFAULT_VOLUME_SIZE = 32;
/** The image channel count when the first Conv does not tell. */
export const DEFAULT_CHANNELS = 3;
/** The largest size tried when the graph's fixed shapes rule the default out. */
const MAX_SEARCHED_SIZE = 1024;

export type ShapeSource = 'model' | 'option' | 'metadata' | 'graph' | 'default';

export interface InputShapeUsed {
  name: string;
  type: string;
  shape: number[];
  /** Where the open dimensions' sizes came from ('model': the model fixes every dimension). */
  source: ShapeSource;
  note?: string;
}

export interface DeclaredInput {
  name: string;
  type: string;
  /** Fixed sizes, or undefined where the model leaves the dimension open. */
  dims: (number | undefined)[];
}

/** Parses `1x3x320x320`, `1,3,320,320` or `[1, 3, 320, 320]`. */
export function parseShape(text: string): number[] | undefined {
  const parts = text.replace(/[[\]()\s]/g, '').split(/[x×,*]/i).filter((p) => p !== '');
  if (parts.length === 0) return undefined;
  const dims = parts.map(Number);
  return dims.every((d) => Number.isInteger(d) && d > 0) ? dims : undefined;
}

/**
 * metadata_props of a model file, read without loading it: the top-level fields are stepped over
 * by their lengths and only field 14's bytes are read (they may sit after hundreds of MB of weights).
 */
export function metadataPropsOfFile(path: string): Map<string, string> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(20);
    const parts: Buffer[] = [];
    for (let pos = 0; pos < size; ) {
      const got = readSync(fd, head, 0, Math.min(head.length, size - pos), pos);
      let at = 0;
      const varint = (): number => {
        let v = 0;
        for (let mul = 1; ; mul *= 128) {
          if (at >= got) throw new Error('truncated');
          const b = head[at++];
          v += (b & 0x7f) * mul;
          if (b < 0x80) return v;
        }
      };
      const key = varint();
      const wire = key & 7;
      let end: number;
      if (wire === 0) {
        varint();
        end = pos + at;
      } else if (wire === 1) end = pos + at + 8;
      else if (wire === 5) end = pos + at + 4;
      else if (wire === 2) {
        const len = varint();
        end = pos + at + len;
      } else break;
      if (end > size) break;
      if (Math.floor(key / 8) === 14 && wire === 2) {
        const field = Buffer.alloc(end - pos);
        readSync(fd, field, 0, field.length, pos);
        parts.push(field);
      }
      pos = end;
    }
    return metadataProps(Buffer.concat(parts));
  } catch {
    return new Map();
  } finally {
    closeSync(fd);
  }
}

/** metadata_props (ModelProto field 14) of a model held in memory; other fields are stepped over. */
export function metadataProps(bytes: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const varint = (pos: number): [number, number] => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (pos >= bytes.length) throw new Error('truncated');
      const b = bytes[pos++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return [v, pos];
      mul *= 128;
    }
  };
  const fields = (start: number, end: number, visit: (num: number, s: number, e: number) => void) => {
    let pos = start;
    while (pos < end) {
      const [key, p1] = varint(pos);
      const wire = key & 7;
      const field = Math.floor(key / 8);
      if (wire === 0) pos = varint(p1)[1];
      else if (wire === 1) pos = p1 + 8;
      else if (wire === 5) pos = p1 + 4;
      else if (wire === 2) {
        const [len, p2] = varint(p1);
        visit(field, p2, p2 + len);
        pos = p2 + len;
      } else throw new Error(`wire type ${wire}`);
    }
  };
  const text = (s: number, e: number) => Buffer.from(bytes.buffer, bytes.byteOffset + s, e - s).toString('utf8');
  try {
    fields(0, bytes.length, (f, s, e) => {
      if (f !== 14) return;
      let key = '';
      let value = '';
      fields(s, e, (g, a, b) => {
        if (g === 1) key = text(a, b);
        else if (g === 2) value = text(a, b);
      });
      if (key) out.set(key, value);
    });
  } catch {
    // A model onnxruntime loaded but this walk cannot read: no metadata.
  }
  return out;
}

function fromMetadata(meta: ReadonlyMap<string, string>, input: string, single: boolean): { shape: number[]; key: string } | undefined {
  const keys = [`${input}.shape`, `${input}:shape`, `${input}_shape`, `input_shape.${input}`, ...(single ? ['input_shape', 'input_size', 'image_size', 'imgsz'] : [])];
  for (const k of keys) {
    const v = meta.get(k);
    const shape = v === undefined ? undefined : parseShape(v);
    if (shape) return { shape, key: k };
  }
  return undefined;
}

/** Open dims filled with `size` (batch 1, channels from the first Conv). */
function fill(inp: DeclaredInput, size: number, channels: number | undefined): number[] {
  const r = inp.dims.length;
  return inp.dims.map((d, i) => {
    if (d !== undefined) return d;
    if (i === 0 && r >= 2) return DEFAULT_BATCH;
    if (i === 1 && r >= 4) return channels ?? DEFAULT_CHANNELS;
    return size;
  });
}

function defaultSize(rank: number): number {
  if (rank === 4) return DEFAULT_IMAGE_SIZE;
  if (rank >= 5) return DEFAULT_VOLUME_SIZE;
  return DEFAULT_SEQUENCE_LENGTH;
}

/** Trailing open dims given by a metadata shape shorter than the rank (`320,320` for NCHW). */
function applyPartial(inp: DeclaredInput, given: number[], base: number[]): number[] | undefined {
  if (given.length === inp.dims.length) return given;
  if (given.length > inp.dims.length) return undefined;
  const out = [...base];
  const off = inp.dims.length - given.length;
  given.forEach((g, i) => (out[off + i] = g));
  return out;
}

/** A numeric conflict the shapes at this size cause (e.g. "Gemm fc needs 256 features, gets 12544"), or undefined. */
function conflict(view: GraphView, dims: Map<string, Dim[]>): string | undefined {
  const known = (v: string | undefined, i: number): number | undefined => {
    const d = v ? dims.get(v) : undefined;
    const x = d ? d[i < 0 ? d.length + i : i] : undefined;
    return isNumber(x) ? x.coef : undefined;
  };
  const rank = (v: string | undefined) => (v ? dims.get(v)?.length : undefined);
  const label = (n: NodeRecord) => `${n.opType} ${n.name || n.outputs[0]}`;
  for (const n of view.order) {
    const [a, b] = n.inputs;
    if (n.opType === 'Gemm') {
      const ka = known(a, attrInt(n, 'transA', 0) ? 0 : 1);
      const kb = known(b, attrInt(n, 'transB', 0) ? 1 : 0);
      if (ka !== undefined && kb !== undefined && ka !== kb) return `${label(n)} takes ${kb} features, would get ${ka}`;
    } else if (n.opType === 'MatMul' && (rank(a) ?? 0) >= 1 && (rank(b) ?? 0) >= 1) {
      const ka = known(a, -1);
      const kb = known(b, rank(b) === 1 ? 0 : -2);
      if (ka !== undefined && kb !== undefined && ka !== kb) return `${label(n)} takes ${kb} features, would get ${ka}`;
    } else if (n.opType === 'Conv') {
      const ca = known(a, 1);
      const cw = known(b, 1);
      if (ca !== undefined && cw !== undefined && ca !== cw * attrInt(n, 'group', 1)) return `${label(n)} takes ${cw * attrInt(n, 'group', 1)} channels, would get ${ca}`;
    }
    if (n.opType === 'Conv' || n.opType === 'MaxPool' || n.opType === 'AveragePool') {
      const inD = a ? dims.get(a) : undefined;
      const outD = dims.get(n.outputs[0]);
      if (inD && inD.every(isNumber) && outD && outD.some((d) => !isNumber(d) || d.coef <= 0)) return `${label(n)}: the map would be smaller than its window`;
    }
    if (n.opType === 'Add' || n.opType === 'Mul' || n.opType === 'Sub' || n.opType === 'Div') {
      const da = a ? dims.get(a) : undefined;
      const db = b ? dims.get(b) : undefined;
      if (da && db) {
        for (let k = 1; k <= Math.min(da.length, db.length); k++) {
          const x = da[da.length - k];
          const y = db[db.length - k];
          if (isNumber(x) && isNumber(y) && x.coef !== y.coef && x.coef !== 1 && y.coef !== 1) return `${label(n)} adds shapes that do not broadcast`;
        }
      }
    }
  }
  return undefined;
}

function firstConvChannels(view: GraphView, input: string): number | undefined {
  for (const u of view.uses(input)) {
    if (u.node.opType !== 'Conv' || u.input !== 0) continue;
    const w = view.dims.get(u.node.inputs[1]);
    if (w && isNumber(w[1])) return w[1].coef * attrInt(u.node, 'group', 1);
  }
  return undefined;
}

/**
 * The shapes to feed: `given` by the user (by input name; '' for the only input), then metadata,
 * then the graph's needs, then the defaults. `checkpoint` (the opened ONNX file) lets the graph
 * decide; without it the defaults stand.
 */
export function chooseInputShapes(
  inputs: readonly DeclaredInput[],
  opts: { given?: Readonly<Record<string, number[]>>; metadata?: ReadonlyMap<string, string>; checkpoint?: Checkpoint; path: string; symbolicDim?: number },
): InputShapeUsed[] {
  const given = { ...(opts.given ?? {}) };
  if ('' in given) {
    if (inputs.length !== 1) throw new Error(`the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}): name the one --input-shape is for (NAME=1x3x320x320)`);
    given[inputs[0].name] = given[''];
    delete given[''];
  }
  for (const name of Object.keys(given)) {
    if (!inputs.some((i) => i.name === name)) throw new Error(`--input-shape names ${name}, which is not an input of the model (inputs: ${inputs.map((i) => i.name).join(', ')})`);
  }
  const out: (InputShapeUsed | undefined)[] = inputs.map((inp) => {
    const g = given[inp.name];
    if (g) {
      if (g.length !== inp.dims.length) throw new Error(`--input-shape ${inp.name}=${g.join('x')} has ${g.length} dimensions; the model's input has ${inp.dims.length}`);
      inp.dims.forEach((d, i) => {
        if (d !== undefined && d !== g[i]) throw new Error(`--input-shape ${inp.name}=${g.join('x')}: dimension ${i} is fixed at ${d} in the model`);
      });
      return { name: inp.name, type: inp.type, shape: g, source: 'option' };
    }
    if (inp.dims.every((d) => d !== undefined)) return { name: inp.name, type: inp.type, shape: inp.dims as number[], source: 'model' };
    if (opts.symbolicDim !== undefined) return { name: inp.name, type: inp.type, shape: inp.dims.map((d) => d ?? opts.symbolicDim!), source: 'option', note: `every open dimension ${opts.symbolicDim}` };
    const m = opts.metadata ? fromMetadata(opts.metadata, inp.name, inputs.length === 1) : undefined;
    if (m) {
      const shape = applyPartial(inp, m.shape, fill(inp, defaultSize(inp.dims.length), undefined));
      if (shape && inp.dims.every((d, i) => d === undefined || d === shape[i])) return { name: inp.name, type: inp.type, shape, source: 'metadata', note: `metadata_props ${m.key}` };
    }
    return undefined;
  });
  const open = inputs.map((inp, i) => (out[i] ? undefined : inp)).filter((x): x is DeclaredInput => x !== undefined);
  if (open.length === 0) return out as InputShapeUsed[];

  let view: GraphView | undefined;
  try {
    if (opts.checkpoint) {
      const s = onnxStructure(opts.checkpoint);
      view = new GraphView(opts.path, s, s.model.graph);
    }
  } catch {
    view = undefined;
  }
  const channels = new Map(open.map((inp) => [inp.name, view ? firstConvChannels(view, inp.name) : undefined]));
  const shapesAt = (size: number | ((inp: DeclaredInput) => number)) =>
    new Map(open.map((inp) => [inp.name, fill(inp, typeof size === 'number' ? size : size(inp), channels.get(inp.name))]));
  const conflictAt = (shapes: Map<string, number[]>): string | undefined => {
    if (!view) return undefined;
    const dims = new Map<string, Dim[]>();
    for (const [name, shape] of shapes) dims.set(name, shape.map(num));
    for (const u of out) if (u) dims.set(u.name, u.shape.map(num));
    inferShapes(view, dims);
    return conflict(view, dims);
  };
  const defaults = shapesAt((inp) => defaultSize(inp.dims.length));
  const why = conflictAt(defaults);
  let chosen = defaults;
  let source: ShapeSource = 'default';
  let note: string | undefined;
  if (why) {
    let found: number | undefined;
    for (let s = 1; s <= MAX_SEARCHED_SIZE && found === undefined; s++) if (!conflictAt(shapesAt(s))) found = s;
    if (found !== undefined) {
      chosen = shapesAt(found);
      source = 'graph';
      note = `the default size does not fit the graph (${why}); ${found} is the smallest size that does`;
    } else note = `no size up to ${MAX_SEARCHED_SIZE} fits the graph (${why}); the defaults were used`;
  }
  return inputs.map((inp, i) => out[i] ?? { name: inp.name, type: inp.type, shape: chosen.get(inp.name)!, source, ...(note ? { note } : {}) });
}
