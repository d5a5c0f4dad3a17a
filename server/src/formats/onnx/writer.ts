// A balanced copy of an ONNX model: the changed tensors' elements replaced where they are stored,
// every other byte as it was. Same-length patches go through writePatchedCopy directly; edits that
// change a length (float16 varints, a new external-data location) are spliced into a staging copy
// first, with every enclosing length prefix re-encoded.
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Tensor } from '../../tensor/tensor';
import { assertUnchanged, bytesOf, entryBytesEqual, type Checkpoint, type TensorEntry } from '../core/checkpoint';
import { temporaryPathFor, writePatchedCopy, type Patch } from '../core/patch';
import type { WriteOptions } from '../core/format';
import { openOnnx, onnxStructure } from './reader';
import { readSegments, type TensorRecord } from './proto';
import { allSameLength, asPatches, copyWithEdits, withLengthFixes, type Edit } from './splice';
import { ENC_INT32_HALF, ENC_TYPED_FLOATS } from './tensors';
import { ByteSource, encodeVarint } from './wire';
import { messageField, stringField, tensorProto } from './encode';
import { newInitializerName, parseUseCopy } from './uses';
import { FileError, asFileError, fail } from '../../errors/fileError';


function checkReplacement(cp: Checkpoint, entry: TensorEntry | undefined, name: string, t: Tensor): TensorEntry {
  if (!entry) fail(cp.path, `cannot write tensor ${name}: the model has no tensor of that name`);
  if (entry.readOnlyReason) fail(cp.path, `cannot write tensor ${name}: ${entry.readOnlyReason}`);
  if (entry.dtype !== t.dtype) fail(cp.path, `cannot write tensor ${name}: it is ${entry.dtype}, the new values are ${t.dtype}`);
  if (entry.shape.length !== t.shape.length || entry.shape.some((d, i) => d !== t.shape[i])) {
    fail(cp.path, `cannot write tensor ${name}: shape [${t.shape.join(', ')}] differs from the stored [${entry.shape.join(', ')}]`);
  }
  return entry;
}

/** Edits that store `t` in the typed fields of a record (float_data/double_data or int32_data halves). */
function typedEdits(src: ByteSource, entry: TensorEntry, r: TensorRecord, t: Tensor): Edit[] {
  const edits: Edit[] = [];
  if (entry.encoding === ENC_TYPED_FLOATS) {
    const field = entry.dtype === 'float64' ? 10 : 4;
    const size = field === 10 ? 8 : 4;
    const bytes = bytesOf(t);
    let i = 0;
    for (const s of r.typed.get(field) ?? []) {
      for (let p = s.start; p < s.end; p += size, i++) edits.push({ start: p, end: p + size, bytes: bytes.subarray(i * size, (i + 1) * size), frame: r.frame });
    }
    return edits;
  }
  // float16/bfloat16 bit patterns as varints: a new pattern may need another number of bytes,
  // so each run is re-encoded whole, keeping the split of elements between runs.
  const bits = t.data as Uint16Array;
  let i = 0;
  for (const s of r.typed.get(5) ?? []) {
    const count = readSegments(src, [s], 5).length;
    const values = Array.from(bits.subarray(i, i + count), (v) => encodeVarint(v));
    i += count;
    if (s.packed) {
      const content = Buffer.concat(values);
      edits.push({ start: s.lenPos, end: s.end, bytes: Buffer.concat([encodeVarint(content.length), content]), frame: r.frame });
    } else {
      edits.push({ start: s.start, end: s.end, bytes: values[0], frame: r.frame });
    }
  }
  return edits;
}

/**
 * A name for the balanced copy of an external-data file, beside the target: `<target>.data`
 * (`<target>.<i>.data` for several), else `.balanced.data`, `.balanced2.data`… when that name is
 * taken by a source file, or by a file already in `finalFolder` (where the files end up) that the
 * model already there does not own. Another model's data file is never replaced.
 */
function newDataPath(target: string, finalFolder: string, index: number, count: number, taken: Set<string>, owned: ReadonlySet<string>): string {
  const stem = basename(target);
  const base = count === 1 ? `${stem}.data` : `${stem}.${index}.data`;
  const named = (k: number) => (k === 0 ? base : base.replace(/\.data$/, k === 1 ? '.balanced.data' : `.balanced${k}.data`));
  const free = (name: string) => {
    const placed = resolve(finalFolder, name);
    return !taken.has(resolve(dirname(target), name)) && !taken.has(placed) && (owned.has(placed) || !existsSync(placed));
  };
  let k = 0;
  while (!free(named(k))) k++;
  const candidate = join(dirname(target), named(k));
  taken.add(resolve(candidate));
  taken.add(resolve(finalFolder, named(k)));
  return candidate;
}

/** The external-data files of the ONNX model already at `path` (none when there is none, or it does not read). */
function dataFilesOf(path: string): Set<string> {
  if (!existsSync(path)) return new Set();
  try {
    const cp = openOnnx(path);
    return new Set(cp.tensors.filter((e) => e.file !== cp.path).map((e) => resolve(e.file)));
  } catch {
    return new Set();
  }
}

export function writeOnnx(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  const s = onnxStructure(cp);
  assertUnchanged(cp);
  const model = s.model;
  const edits: Edit[] = [];
  const dataPatches = new Map<string, Patch[]>();
  const src = ByteSource.open(cp.path);
  /** New initializers (use copies): their name, values and the stored tensor they copy. */
  const added = new Map<string, { t: Tensor; base: TensorRecord }>();
  // When every reader of a shared initializer gets a copy, the last one takes the initializer itself
  // (its bytes patched), so that no initializer is left unused.
  const inPlace = lastUseInPlace(s, changed);
  try {
    for (const [changedName, t] of changed) {
      const name = inPlace.get(changedName) ?? changedName;
      if (!s.entries.has(name) && parseUseCopy(name)) {
        const copy = useCopyEdit(cp, s, name, t, added);
        edits.push(copy.edit);
        added.set(copy.initializer, { t, base: copy.base });
        continue;
      }
      const entry = checkReplacement(cp, s.entries.get(name), name, t);
      const r = s.records.get(name)!;
      if (entry.file !== cp.path) {
        const list = dataPatches.get(entry.file) ?? [];
        list.push({ offset: entry.offset, bytes: bytesOf(t) });
        dataPatches.set(entry.file, list);
      } else if ((entry.encoding ?? 'raw') === 'raw') {
        edits.push({ start: entry.offset, end: entry.offset + entry.byteLength, bytes: bytesOf(t), frame: r.frame });
      } else if (entry.encoding === ENC_TYPED_FLOATS || entry.encoding === ENC_INT32_HALF) {
        edits.push(...typedEdits(src, entry, r, t));
      } else {
        fail(cp.path, `cannot write tensor ${name}: its encoding ${entry.encoding} is not written back`);
      }
    }
  } finally {
    src.close();
  }

  // Every external file gets a balanced copy beside the target, so the copy never shares (or
  // depends on the folder of) the original's data; the locations in the model are rewritten.
  const dataFiles = [...new Set(cp.tensors.filter((e) => e.file !== cp.path).map((e) => e.file))];
  const finalFolder = opts.finalFolder ?? dirname(target);
  const finalTarget = resolve(finalFolder, basename(target));
  const taken = new Set<string>([...dataFiles.map((f) => resolve(f)), resolve(cp.path), resolve(target), finalTarget]);
  // A data file already where the copy goes is replaced only when the model there (an earlier
  // balanced copy being overwritten) is the one that reads it.
  const owned = dataFiles.length ? dataFilesOf(finalTarget) : new Set<string>();
  const renamed = new Map<string, string>();
  dataFiles.forEach((f, i) => renamed.set(f, newDataPath(target, finalFolder, i, dataFiles.length, taken, owned)));
  for (const [name, r] of s.records) {
    const entry = s.entries.get(name)!;
    const to = renamed.get(entry.file);
    if (!to) continue;
    const loc = r.external.find((e) => e.key === 'location')!;
    const text = Buffer.from(basename(to), 'utf8');
    edits.push({ start: loc.valueLenPos, end: loc.valueEnd, bytes: Buffer.concat([encodeVarint(text.length), text]), frame: loc.frame });
  }

  const written: string[] = [];
  try {
    for (const [from, to] of renamed) {
      writePatchedCopy(from, to, dataPatches.get(from) ?? [], { backup: opts.backup });
      written.push(to);
    }
    if (added.size > 0) {
      // New initializers go at the end of the main graph, in one insertion.
      const g = model.graph;
      const end = model.frames[g.frame!].end;
      const bytes = Buffer.concat([...added].map(([name, { t, base }]) => messageField(5, [tensorProto({ name, dataType: base.dataType, dims: base.dims, raw: bytesOf(t) })])));
      edits.push({ start: end, end, bytes, frame: g.frame! });
    }
    const all = withLengthFixes(model.frames, edits);
    const verify = (tmp: string) => verifyWritten(cp, changed, tmp, target, renamed, added, inPlace);
    if (allSameLength(all)) {
      writePatchedCopy(cp.path, target, asPatches(all), { verify, backup: opts.backup });
    } else {
      const staging = `${temporaryPathFor(target)}.staging`;
      try {
        const fd = openSync(staging, 'wx');
        try {
          copyWithEdits(cp.path, model.size, all, fd);
        } finally {
          closeSync(fd);
        }
        writePatchedCopy(staging, target, [], { verify, backup: opts.backup });
      } finally {
        rmSync(staging, { force: true });
      }
    }
  } catch (e) {
    for (const f of written) rmSync(f, { force: true });
    throw asFileError(target, e);
  }
  return [target, ...written];
}

/** Use copies that may be written to their shared initializer itself: copy name → initializer name. */
function lastUseInPlace(s: ReturnType<typeof onnxStructure>, changed: ReadonlyMap<string, Tensor>): Map<string, string> {
  const out = new Map<string, string>();
  const graph = s.model.graph;
  // Subgraphs may read outer initializers by name: then no initializer is taken over.
  if (graph.nodes.some((n) => n.attributes.some((a) => a.g || a.graphs.length > 0))) return out;
  const byBase = new Map<string, string[]>();
  for (const name of changed.keys()) {
    const use = !s.entries.has(name) ? parseUseCopy(name) : undefined;
    if (use) byBase.set(use.base, [...(byBase.get(use.base) ?? []), name]);
  }
  for (const [base, names] of byBase) {
    if (changed.has(base) || graph.outputs.some((v) => v.name === base)) continue;
    const readers = graph.nodes.flatMap((n, i) => n.inputs.flatMap((v, k) => (v === base ? [`${i}.${k}`] : [])));
    const copied = new Set(names.map((n) => { const u = parseUseCopy(n)!; return `${u.node}.${u.input}`; }));
    if (readers.length > 0 && readers.every((r) => copied.has(r))) out.set(names[names.length - 1], base);
  }
  return out;
}

/**
 * A scaled copy of one node's use of a shared initializer (uses.ts): the node's input repointed to
 * a new initializer (added by the caller), the shared one left as it was for its other readers.
 */
function useCopyEdit(cp: Checkpoint, s: ReturnType<typeof onnxStructure>, name: string, t: Tensor, added: ReadonlyMap<string, unknown>): { edit: Edit; initializer: string; base: TensorRecord } {
  const use = parseUseCopy(name)!;
  const graph = s.model.graph;
  const node = graph.nodes[use.node];
  const base = graph.initializers.find((r) => r.name === use.base);
  const entry = base?.entryName ? s.entries.get(base.entryName) : undefined;
  if (!node || !base || !entry || node.inputs[use.input] !== use.base || !node.inputFields || node.frame === undefined) {
    fail(cp.path, `cannot write tensor ${name}: node ${use.node} of the main graph does not read initializer ${use.base} at input ${use.input}`);
  }
  checkReplacement(cp, entry, use.base, t);
  const taken = new Set<string>([...s.entries.keys(), ...added.keys()]);
  for (const n of graph.nodes) for (const v of [...n.inputs, ...n.outputs]) taken.add(v);
  for (const v of [...graph.inputs, ...graph.outputs, ...graph.valueInfo]) taken.add(v.name);
  const initializer = newInitializerName(use, taken);
  const field = node.inputFields[use.input];
  return { edit: { start: field.start, end: field.end, bytes: stringField(1, initializer), frame: node.frame }, initializer, base };
}

/** Reads the written file back: same tensors, the new values where changed, data where expected. */
function verifyWritten(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, tmp: string, target: string, renamed: ReadonlyMap<string, string>, added: ReadonlyMap<string, { t: Tensor }>, inPlace: ReadonlyMap<string, string>): void {
  let back: Checkpoint;
  try {
    back = openOnnx(tmp);
  } catch (e) {
    throw new FileError(target, `the written file does not read back (${(e as Error).message})`);
  }
  if (back.tensors.length !== cp.tensors.length + added.size) fail(target, `the written file has ${back.tensors.length} tensors, the original ${cp.tensors.length} and ${added.size} new`);
  const backByName = new Map(back.tensors.map((e) => [e.name, e]));
  cp.tensors.forEach((a, i) => {
    // New initializers come last in the main graph; the original tensors keep their order otherwise.
    const b = added.size ? backByName.get(a.name) ?? back.tensors[i] : back.tensors[i];
    if (a.name !== b.name || a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) fail(target, `tensor ${a.name} did not survive the write (read back as ${b.name})`);
    const expectFile = a.file === cp.path ? tmp : renamed.get(a.file);
    if (expectFile && resolve(b.file) !== resolve(expectFile)) fail(target, `tensor ${a.name} reads from ${b.file}, expected ${expectFile}`);
  });
  const backEntries = new Map(back.tensors.map((e) => [e.name, e]));
  for (const [changedName, t] of changed) {
    const name = inPlace.get(changedName) ?? changedName;
    // Use copies written as new initializers are checked below, under their new names.
    if (!cp.tensors.some((e) => e.name === name) && parseUseCopy(name)) continue;
    const e = backEntries.get(name);
    if (!e || !entryBytesEqual(e, bytesOf(t))) fail(target, `tensor ${name} reads back with other values than were written`);
  }
  for (const [name, { t }] of added) {
    const e = backEntries.get(name);
    if (!e || !entryBytesEqual(e, bytesOf(t))) fail(target, `new initializer ${name} does not read back with the values written`);
  }
}
