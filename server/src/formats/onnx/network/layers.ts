// Which nodes are layers: Gemm, MatMul, Conv, ConvTranspose and RNN with constant weights. Each
// says which input carries the data and which weight axes index its units and its inputs.
import { attrInt } from '../attrs';
import type { GraphView } from '../graphView';
import type { NodeRecord } from '../proto';
import type { Layer, Layers } from './types';
import { weightView } from './weights';

/** The layers of the main graph, in graph order. */
export function findLayers(view: GraphView): Layers {
  const layers = new Map<NodeRecord, Layer>();
  for (const n of view.order) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    const layer = layerOf(view, n);
    if (layer) layers.set(n, layer);
  }
  return layers;
}

function layerOf(view: GraphView, n: NodeRecord): Layer | undefined {
  const layer = layerShape(view, n);
  // An empty weight has no units to balance (and a corrupt file can claim one).
  return layer && layer.weight.shape.every((d) => d > 0) ? layer : undefined;
}

function layerShape(view: GraphView, n: NodeRecord): Layer | undefined {
  const base = { node: n, convGroups: 1 };
  switch (n.opType) {
    case 'Gemm': {
      const a = weightView(view, n.inputs[0], 2);
      const b = weightView(view, n.inputs[1], 2);
      const tA = attrInt(n, 'transA', 0) === 1;
      const tB = attrInt(n, 'transB', 0) === 1;
      if (b && !a) return { ...base, kind: 'Gemm', dataInput: 0, weight: b, targetAxis: tB ? 0 : 1, sourceAxis: tB ? 1 : 0, inputUnits: b.shape[tB ? 1 : 0] };
      if (a && !b) return { ...base, kind: 'Gemm', dataInput: 1, weight: a, targetAxis: tA ? 1 : 0, sourceAxis: tA ? 0 : 1, inputUnits: a.shape[tA ? 0 : 1] };
      return undefined;
    }
    case 'MatMul': {
      const a = weightView(view, n.inputs[0], 2);
      const b = weightView(view, n.inputs[1], 2);
      if (b && !a) return { ...base, kind: 'MatMul', dataInput: 0, weight: b, targetAxis: 1, sourceAxis: 0, inputUnits: b.shape[0] };
      if (a && !b) return { ...base, kind: 'MatMul', dataInput: 1, weight: a, targetAxis: 0, sourceAxis: 1, inputUnits: a.shape[1] };
      return undefined;
    }
    case 'Conv': {
      const w = weightView(view, n.inputs[1]);
      if (!w || w.shape.length < 3) return undefined;
      const G = attrInt(n, 'group', 1);
      return { ...base, kind: 'Conv', dataInput: 0, weight: w, targetAxis: 0, sourceAxis: 1, inputUnits: w.shape[1] * G, convGroups: G };
    }
    case 'ConvTranspose': {
      const w = weightView(view, n.inputs[1]);
      if (!w || w.shape.length < 3 || attrInt(n, 'group', 1) !== 1) return undefined;
      return { ...base, kind: 'ConvTranspose', dataInput: 0, weight: w, targetAxis: 1, sourceAxis: 0, inputUnits: w.shape[0] };
    }
    case 'RNN': {
      const w = weightView(view, n.inputs[1], 3);
      const r = weightView(view, n.inputs[2], 3);
      if (!w || !r) return undefined;
      return { ...base, kind: 'RNN', dataInput: 0, weight: w, targetAxis: 1, sourceAxis: 2, inputUnits: w.shape[2] };
    }
    default:
      return undefined;
  }
}

/** The axis of the layer's data input that its weights contract. */
export function contractedAxis(layer: Layer, rank: number): number {
  const n = layer.node;
  switch (layer.kind) {
    case 'Gemm':
      return layer.dataInput === 0 ? (attrInt(n, 'transA', 0) ? 0 : 1) : attrInt(n, 'transB', 0) ? 1 : 0;
    case 'MatMul':
      return layer.dataInput === 0 ? rank - 1 : rank - 2;
    case 'RNN':
      return 2;
    default:
      return 1;
  }
}

/** Whether the layer convolves (its units and inputs are image channels). */
export function isConv(layer: Layer): boolean {
  return layer.kind === 'Conv' || layer.kind === 'ConvTranspose';
}
