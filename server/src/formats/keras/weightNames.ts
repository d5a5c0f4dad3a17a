// Layers proposed from the weight names of channels-last weights without a topology (Keras
// save_weights files, TF.js weights manifests): `<layer>/kernel|filters|weights` (+ `bias`),
// `<layer>/depthwise_*` + `pointwise_*` as a depthwise then a pointwise layer, chained in file
// order where the channel counts agree. Every layer is unconfirmed (its units stay visible)
// and no activation is guessed: a manifest (`<file>.synbal.json`) confirms the layers.
import { isFloatDType, type Checkpoint, type TensorEntry } from '../core/checkpoint';
import type { LayerSpec, Topology } from '../stateDict/layerSpec';

const WEIGHT = new Set(['kernel', 'filters', 'weights', 'W']);
const BIAS = new Set(['bias', 'b', 'biases']);
const DEPTHWISE = new Set(['depthwise_filter', 'depthwise_kernel']);
const POINTWISE = new Set(['pointwise_filter', 'pointwise_kernel']);

export function proposeChannelsLastTopology(cp: Checkpoint): Topology | undefined {
  const byPrefix = new Map<string, Map<string, TensorEntry>>();
  for (const t of cp.tensors) {
    const cut = t.name.lastIndexOf('/');
    const prefix = cut < 0 ? '' : t.name.slice(0, cut);
    const role = t.name.slice(cut + 1).replace(/:\d+$/, '');
    if (!byPrefix.has(prefix)) byPrefix.set(prefix, new Map());
    byPrefix.get(prefix)!.set(role, t);
  }
  const layers: LayerSpec[] = [];
  const skipped: string[] = [];
  let prevOut: number | undefined;
  let prevKind: 'linear' | 'conv' | undefined;
  const chain = (l: LayerSpec, fin: number, out: number) => {
    const reads = prevOut !== undefined && (fin === prevOut || (l.kind === 'linear' && prevKind === 'conv' && fin % prevOut === 0));
    if (!reads && layers.length) l.input = `input:${l.name}`;
    layers.push(l);
    prevOut = out;
    prevKind = l.kind;
  };
  for (const [prefix, roles] of byPrefix) {
    const name = prefix || 'layer';
    const float = (r: TensorEntry | undefined) => (r && isFloatDType(r.dtype) ? r : undefined);
    const dw = float([...roles].find(([r]) => DEPTHWISE.has(r))?.[1]);
    const pw = float([...roles].find(([r]) => POINTWISE.has(r))?.[1]);
    const w = float([...roles].find(([r]) => WEIGHT.has(r))?.[1]);
    const b = float([...roles].find(([r]) => BIAS.has(r))?.[1]);
    if (dw && pw && dw.shape.length === 4 && pw.shape.length === 4 && dw.shape[3] === 1 && pw.shape[2] === dw.shape[2]) {
      const C = dw.shape[2];
      chain({ name: `${name}/depthwise`, kind: 'conv', weight: dw.name, layout: 'in-out', groups: C, unconfirmed: true }, C, C);
      const out = pw.shape[3];
      chain({ name, kind: 'conv', weight: pw.name, layout: 'in-out', ...(b && b.shape[0] === out ? { bias: b.name } : {}), unconfirmed: true }, C, out);
    } else if (w && (w.shape.length === 2 || w.shape.length === 4)) {
      const out = w.shape[w.shape.length - 1];
      const l: LayerSpec = { name, kind: w.shape.length === 2 ? 'linear' : 'conv', weight: w.name, layout: 'in-out', unconfirmed: true };
      if (b && b.shape.length === 1 && b.shape[0] === out) l.bias = b.name;
      chain(l, w.shape[w.shape.length - 2], out);
    } else skipped.push(prefix);
  }
  if (!layers.length) return undefined;
  const notes = [`${layers.length} layers proposed from channels-last weight names (kernel/filters/weights, depthwise/pointwise, bias) in file order: their units stay visible and no activation is assumed until a manifest (${cp.path}.synbal.json) confirms them`];
  if (skipped.length) notes.push(`weights under ${skipped.slice(0, 4).join(', ')}${skipped.length > 4 ? ', …' : ''} are not placed in a layer (normalization or other parameters)`);
  return { layers, source: 'weight names', notes };
}
