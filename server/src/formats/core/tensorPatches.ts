// Turning "these tensors have new values" into byte patches, with every check that keeps a
// write from producing a file that reads back differently than intended. Format-neutral:
// safetensors uses it too.
import { bytesOf, type Checkpoint, type TensorEntry } from './checkpoint';
import type { Tensor } from '../../tensor/tensor';
import { FileError } from '../../errors/fileError';

export interface TensorPatch {
  name: string;
  file: string;
  offset: number;
  bytes: Buffer;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function tensorPatches(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>): TensorPatch[] {
  const byName = new Map<string, TensorEntry>(cp.tensors.map((t) => [t.name, t]));
  const patches: TensorPatch[] = [];
  for (const [name, t] of changed) {
    const e = byName.get(name);
    if (!e) throw new FileError(cp.path, `no tensor named ${name} to write`);
    if (e.readOnlyReason) throw new FileError(cp.path, `tensor ${name} cannot be written: ${e.readOnlyReason}`);
    if ((e.encoding ?? 'raw') !== 'raw') throw new FileError(cp.path, `tensor ${name} is stored as ${e.encoding}, which this writer does not patch`);
    if (t.dtype !== e.dtype) throw new FileError(cp.path, `tensor ${name} is ${e.dtype} in the file; the new values are ${t.dtype}`);
    if (!sameShape(t.shape, e.shape)) throw new FileError(cp.path, `tensor ${name} has shape [${e.shape.join(', ')}] in the file; the new values have [${t.shape.join(', ')}]`);
    const bytes = bytesOf(t);
    if (bytes.length !== e.byteLength) throw new FileError(cp.path, `tensor ${name} takes ${e.byteLength} bytes in the file; the new values take ${bytes.length}`);
    patches.push({ name, file: e.file, offset: e.offset, bytes });
  }
  checkOverlaps(cp.path, patches);
  return patches;
}

/** Tied weights may both be "changed"; they must then agree byte for byte where they overlap. */
function checkOverlaps(path: string, patches: TensorPatch[]): void {
  const sorted = [...patches].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.offset - b.offset));
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i];
    for (let j = i + 1; j < sorted.length; j++) {
      const b = sorted[j];
      if (b.file !== a.file || b.offset >= a.offset + a.bytes.length) break;
      const from = b.offset;
      const to = Math.min(a.offset + a.bytes.length, b.offset + b.bytes.length);
      const left = a.bytes.subarray(from - a.offset, to - a.offset);
      const right = b.bytes.subarray(0, to - from);
      if (!left.equals(right)) throw new FileError(path, `tensors ${a.name} and ${b.name} share bytes in the file (tied weights or views of one storage) but were given different values`);
    }
  }
}

/** Patches for one file, as file offsets and bytes. */
export function patchesFor(file: string, patches: readonly TensorPatch[]): TensorPatch[] {
  return patches.filter((p) => p.file === file);
}
