// Phase 3: the weights of each layer by role, and loading them. Tensors load when a layer
// asks for them, so the network's tensor list keeps the order in which layers were reached
// (a layer found unsupported after loading a weight still lists it, as before).
import { isFloatDType, loadTensor, type Checkpoint, type TensorEntry } from '../../core/checkpoint';
import type { Tensor } from '../../../tensor/tensor';
import type { KerasLayer } from '../config';
import type { KerasStructure } from '../structure';
import { Unsupported } from './values';

export interface WeightIndex {
  /** Layer name → role (kernel, bias, gamma, …) → checkpoint tensor name. */
  byLayer: ReadonlyMap<string, ReadonlyMap<string, string>>;
  entries: ReadonlyMap<string, TensorEntry>;
}

/** The tensors loaded so far, by name, in load order: the network's tensor list. */
export type TensorTable = Map<string, Tensor>;

export function indexWeights(cp: Checkpoint, s: KerasStructure): WeightIndex {
  const byLayer = new Map<string, Map<string, string>>();
  for (const w of s.weights) {
    let m = byLayer.get(w.layer);
    if (!m) byLayer.set(w.layer, (m = new Map()));
    m.set(w.role, w.tensor);
  }
  return { byLayer, entries: new Map(cp.tensors.map((t) => [t.name, t])) };
}

/** A float weight of the layer, loaded once; quantized weights make the layer unsupported. */
export function layerWeight(index: WeightIndex, table: TensorTable, layer: KerasLayer, role: string, optional = false): Tensor | undefined {
  const name = index.byLayer.get(layer.name)?.get(role);
  if (!name) {
    if (optional) return undefined;
    throw new Error(`layer ${layer.name} (${layer.className}) has no "${role}" weight in the file`);
  }
  const entry = index.entries.get(name);
  if (!entry) throw new Error(`layer ${layer.name}: no tensor ${name}`);
  if (!isFloatDType(entry.dtype)) throw new Unsupported(`its ${role} is stored as ${entry.dtype} (quantized weights are left alone)`);
  let t = table.get(name);
  if (!t) {
    t = loadTensor(entry);
    table.set(name, t);
  }
  return t;
}

export function requireWeight(index: WeightIndex, table: TensorTable, layer: KerasLayer, role: string): Tensor {
  return layerWeight(index, table, layer, role)!;
}

/** The same values under another shape (same element order), for the engine's axis maps. */
export function reshapedView(table: TensorTable, t: Tensor, shape: number[]): Tensor {
  const v: Tensor = { name: t.name, dtype: t.dtype, shape, data: t.data };
  table.set(t.name, v);
  return v;
}
