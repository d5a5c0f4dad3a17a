// Phase 4: walk the classified layers in order, giving each Keras tensor a value and growing the
// network draft. A layer found unsupported becomes opaque: the units feeding it stay fixed and
// its output counts as a network input.
import type { KerasLayer, TensorRef } from '../config';
import { SINGLE_INPUT, type ClassifiedLayer, type LayerKind } from './classify';
import { alias, emptyDraft, inputValue, opaque, type NetworkDraft, type TraceContext } from './draft';
import { activation, batchnorm, pool } from './perChannel';
import { add, concat, flatten, reshape, upsample, zeroPad } from './shape';
import { Unsupported, type Value } from './values';
import { conv, dense, depthwise, separable } from './weighted';
import type { WeightIndex } from './weights';

/** Keras tensor key (`layer:node`) → its value. */
export type ValueMap = ReadonlyMap<string, Value>;

export interface Trace {
  draft: NetworkDraft;
  values: ValueMap;
}

export function traceLayers(layers: readonly ClassifiedLayer[], uses: ReadonlyMap<string, number>, weights: WeightIndex): Trace {
  const ctx: TraceContext = { draft: emptyDraft(), weights, uses };
  const values = new Map<string, Value>();
  for (const { layer, kind } of layers) {
    if (kind.op === 'input') {
      values.set(`${layer.name}:0`, inputValue(ctx.draft, layer));
    } else if (kind.op === 'opaque') {
      const v = opaque(ctx.draft, layer, layer.calls.flat().map((r) => valueOf(values, r)), kind.reason);
      layer.calls.forEach((_, i) => values.set(`${layer.name}:${i}`, v));
    } else {
      const inputs = layer.calls[0].map((r) => valueOf(values, r));
      let v: Value;
      try {
        v = translate(ctx, layer, kind, inputs);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        v = opaque(ctx.draft, layer, inputs, e.message);
      }
      values.set(`${layer.name}:0`, v);
    }
  }
  return { draft: ctx.draft, values };
}

export function valueOf(values: ValueMap, r: TensorRef): Value {
  const v = values.get(`${r.layer}:${r.node}`);
  if (!v) throw new Error(`layer ${r.layer} has no output #${r.node} (node ${r.node} of a layer called fewer times)`);
  return v;
}

function translate(ctx: TraceContext, layer: KerasLayer, kind: Exclude<LayerKind, { op: 'input' | 'opaque' }>, inputs: Value[]): Value {
  if (SINGLE_INPUT.has(kind.op) && inputs.length !== 1) {
    throw new Error(`layer ${layer.name} (${layer.className}) reads ${inputs.length} tensors; it takes one`);
  }
  const [one] = inputs;
  switch (kind.op) {
    case 'dense':
      return dense(ctx, layer, one);
    case 'conv':
      return conv(ctx, layer, one, kind.nd, kind.transposed);
    case 'depthwise':
      return depthwise(ctx, layer, one, kind.nd);
    case 'separable':
      return separable(ctx, layer, one, kind.nd);
    case 'batchnorm':
      return batchnorm(ctx, layer, one);
    case 'activation':
      return activation(ctx, layer, one);
    case 'pool':
      return pool(ctx, layer, one, kind.pool, kind.nd, kind.global);
    case 'zeroPad':
      return zeroPad(ctx, layer, one, kind.nd);
    case 'upsample':
      return upsample(ctx, layer, one, kind.nd);
    case 'flatten':
      return flatten(ctx, layer, one);
    case 'reshape':
      return reshape(ctx, layer, one);
    case 'alias':
      return alias(ctx, layer, one);
    case 'add':
      return add(ctx, layer, inputs);
    case 'concat':
      return concat(ctx, layer, inputs);
  }
}
