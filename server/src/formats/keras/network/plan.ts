// Phase 1: the layer config as nodes in an order where every layer comes after what it reads,
// with how often each layer's output is read (a per-channel op folds into its input's group
// only when nothing else reads that input).
import type { KerasLayer, KerasModel } from '../config';

export interface LayerPlan {
  /** Every layer, each after the layers it reads. */
  order: KerasLayer[];
  /** Reads of each layer's output, by layer name, counting the model's outputs as readers. */
  uses: ReadonlyMap<string, number>;
}

export function planLayers(model: KerasModel): LayerPlan {
  const order = topologicalOrder(model);
  const uses = new Map<string, number>();
  for (const l of model.layers) for (const call of l.calls) for (const r of call) uses.set(r.layer, (uses.get(r.layer) ?? 0) + 1);
  for (const r of model.outputs) uses.set(r.layer, (uses.get(r.layer) ?? 0) + 1);
  return { order, uses };
}

function topologicalOrder(model: KerasModel): KerasLayer[] {
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const state = new Map<string, 1 | 2>();
  const out: KerasLayer[] = [];
  const visit = (l: KerasLayer, path: string[]) => {
    const st = state.get(l.name);
    if (st === 2) return;
    if (st === 1) throw new Error(`the model config has a cycle through ${[...path, l.name].join(' → ')}`);
    state.set(l.name, 1);
    for (const call of l.calls) {
      for (const r of call) {
        const src = byName.get(r.layer);
        if (!src) throw new Error(`layer ${l.name} reads "${r.layer}", which is not a layer of the model`);
        visit(src, [...path, l.name]);
      }
    }
    state.set(l.name, 2);
    out.push(l);
  };
  for (const l of model.layers) visit(l, []);
  for (const r of [...model.inputs, ...model.outputs]) {
    if (!byName.has(r.layer)) throw new Error(`the model's inputs or outputs name "${r.layer}", which is not a layer of the model`);
  }
  return out;
}
