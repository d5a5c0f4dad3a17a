// From an ONNX graph to the network the engine balances. Layers (Gemm, MatMul, Conv, ConvTranspose,
// RNN with constant weights) own one group of units each (per direction for RNN). Each group's
// values are followed forward through the operators that pass a positive per-channel scale
// (passThrough.ts) to the layers that read them, which gives the outgoing connections; bias-like
// constants met on the way (a MatMul's Add, BatchNorm's mean and β) become bias connections;
// residual Adds tie groups. Whatever cannot be followed keeps its units visible, with the reason.
//
// The phases, each a function of the values before it:
//   findLayers        view                         → Layers
//   layerGroups       view, Layers                 → LayerGroups
//   traceLayerGroups  view, Layers, reachable      → GroupTrace[]
//   affineGroups      …, names, reachable, traced  → AffineGroup[] (group, its weights, its trace)
//   tieResiduals      GroupTrace[]                 → ties, findings
//   layerConnections  LayerGroups, GroupTrace[]    → source groups, view connections, findings, notes
//   storedConnections view connections             → connections, tensors, findings
//   reasonsOf         traces, findings             → each group's reasons, in order found
//   finishGroups      groups, traces, reasons      → unit groups, notes
//   graphNotes        checkpoint, Layers, ties     → notes on the graph as a whole
import type { Network } from '../../../engine/network';
import type { BuiltNetwork } from '../../core/format';
import type { Checkpoint } from '../../core/checkpoint';
import { GraphView } from '../graphView';
import { onnxStructure } from '../reader';
import { affineGroups } from './affine';
import { layerConnections } from './connections';
import { finishGroups } from './finish';
import { layerGroups, reasonsOf } from './groups';
import { findLayers } from './layers';
import { graphNotes } from './notes';
import { extendReachable } from './reach';
import { tieResiduals } from './residual';
import { storedConnections } from './stored';
import { traceLayerGroups } from './trace';
import type { GroupInfo, GroupTrace } from './types';
import { asFileError } from '../../../errors/fileError';

/** The network an ONNX checkpoint describes, with notes on what the builder inferred or skipped. */
export function onnxToNetwork(cp: Checkpoint): BuiltNetwork {
  try {
    return build(cp);
  } catch (e) {
    throw asFileError(cp.path, e);
  }
}

function build(cp: Checkpoint): BuiltNetwork {
  const s = onnxStructure(cp);
  const view = new GraphView(cp.path, s, s.model.graph);
  const layers = findLayers(view);
  const byLayer = layerGroups(view, layers);
  const layerInfos = [...byLayer.values()].flat();
  const reachable = extendReachable(view, layers, new Set(), [...layers.values()].flatMap((l) => l.node.outputs.filter(Boolean)));
  const layerTraces = traceLayerGroups({ view, layers, reachable }, byLayer);
  const affine = affineGroups({ view, layers, names: namesOf(layerInfos), reachable, traced: new Set(layerTraces.flatMap((t) => [...t.traced])) });
  const traces: GroupTrace[] = [...layerTraces, ...affine.map((a) => a.trace)];
  const residuals = tieResiduals(traces);
  const followed = [...layerInfos, ...affine.map((a) => a.info)];
  const inputs = layerConnections({ view, layers, layerGroups: byLayer, traces, names: namesOf(followed) });
  const pending = [...layerTraces.flatMap((t) => t.biases), ...affine.flatMap((a) => [...a.weights, ...a.trace.biases]), ...inputs.connections];
  const stored = storedConnections(view, pending);
  // Layers stay listed even when none of their weights could be used (they say why);
  // source groups exist only where a connection needed one.
  const finished = finishGroups({
    view,
    layers,
    groups: [...followed, ...inputs.sourceGroups],
    traces: new Map(traces.map((t) => [t.group, t])),
    reasons: reasonsOf(traces, residuals.findings, inputs.findings, stored.findings),
  });
  const { ties } = residuals;
  const notes = [...inputs.notes, ...stored.notes, ...finished.notes, ...graphNotes(cp, s, layers.size, ties)];
  const network: Network = { name: s.model.graph.name || cp.path, groups: finished.groups, tensors: stored.tensors, connections: stored.connections, ...(ties.length ? { ties } : {}) };
  return { network, notes };
}

function namesOf(groups: readonly GroupInfo[]): Set<string> {
  return new Set(groups.map((g) => g.group.name));
}
