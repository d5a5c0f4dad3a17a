// Writing changed weights into an HDF5 file (a copy: callers never pass the original), through
// h5wasm, then reading them back to prove they landed. HDF5 rewrites a contiguous dataset's
// bytes in place, so every other byte of the copy stays as it was.
import type { Tensor } from '../../tensor/tensor';
import { bytesOf, type Checkpoint, type TensorEntry } from '../core/checkpoint';
import { closeHdf5, datasetInfo, openHdf5, readDatasetBytes, writeDatasetBytes } from './hdf5';
import { kerasStructureOf } from './structure';
import { FileError } from '../../errors/fileError';

export interface DatasetWrite {
  dataset: string;
  tensor: Tensor;
}

function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Matches each changed tensor to its dataset. Shapes may differ when the element count is the
 * same (the graph builder views a depthwise kernel [k…, C, m] as [k…, C·m, 1]).
 */
export function plannedWrites(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>): DatasetWrite[] {
  const s = kerasStructureOf(cp);
  const entries = new Map<string, TensorEntry>(cp.tensors.map((t) => [t.name, t]));
  const datasets = new Map(s.weights.map((w) => [w.tensor, w.dataset]));
  const out: DatasetWrite[] = [];
  for (const [name, t] of changed) {
    const e = entries.get(name);
    const dataset = datasets.get(name);
    if (!e || !dataset) throw new FileError(cp.path, `there is no tensor ${name} to replace`);
    if (e.readOnlyReason) throw new FileError(cp.path, `tensor ${name} cannot be rewritten: ${e.readOnlyReason}`);
    if (t.dtype !== e.dtype) throw new FileError(cp.path, `tensor ${name} is ${e.dtype}; the replacement is ${t.dtype}`);
    if (numelOf(t.shape) !== numelOf(e.shape) || t.data.length !== numelOf(e.shape)) {
      throw new FileError(cp.path, `tensor ${name} has shape [${e.shape.join(', ')}]; the replacement has [${t.shape.join(', ')}]`);
    }
    out.push({ dataset, tensor: t });
  }
  return out;
}

/** Writes the datasets of an HDF5 file in place; `label` names the file in errors. */
export function writeDatasets(h5Path: string, writes: readonly DatasetWrite[], label: string): void {
  const f = openHdf5(h5Path, 'a', label);
  try {
    for (const w of writes) {
      const info = datasetInfo(f, w.dataset, label);
      if (!info) throw new Error(`${label}: dataset ${w.dataset} disappeared from the copy`);
      writeDatasetBytes(f, info, bytesOf(w.tensor), label);
    }
  } finally {
    closeHdf5(f);
  }
}

/** Reads every written dataset back and compares it byte for byte. */
export function verifyDatasets(h5Path: string, writes: readonly DatasetWrite[], label: string): void {
  const f = openHdf5(h5Path, 'r', label);
  try {
    for (const w of writes) {
      const info = datasetInfo(f, w.dataset, label);
      if (!info) throw new Error(`${label}: the written file has no dataset ${w.dataset}`);
      if (!readDatasetBytes(f, info, label).equals(bytesOf(w.tensor))) throw new Error(`${label}: dataset ${w.dataset} did not read back as written`);
    }
  } finally {
    closeHdf5(f);
  }
}
