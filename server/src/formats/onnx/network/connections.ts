// Each layer's incoming connections, layer by layer in graph order: what covers its inputs
// (inputs.ts), then its own weights (layerWeights.ts). Source groups are shared between layers
// that read the same part of the same value.
import type { GraphView } from '../graphView';
import { arrivalsByLayer, coverInputs } from './inputs';
import { layerWeights } from './layerWeights';
import type { Finding, GroupInfo, GroupTrace, LayerGroups, Layers, PendingConnection } from './types';

export interface ConnectionsInput {
  view: GraphView;
  layers: Layers;
  layerGroups: LayerGroups;
  /** Every trace (layer groups', then affine groups'), in the order traced. */
  traces: readonly GroupTrace[];
  /** Names of the groups made so far. */
  names: ReadonlySet<string>;
}

export interface LayerConnections {
  /** Visible groups made for inputs no followed group covers, in the order made. */
  sourceGroups: GroupInfo[];
  connections: PendingConnection[];
  findings: Finding[];
  notes: string[];
}

export function layerConnections(input: ConnectionsInput): LayerConnections {
  const { view, layers } = input;
  const arrivals = arrivalsByLayer(input.traces);
  const sources = new Map<string, GroupInfo>();
  const names = new Set(input.names);
  const out: LayerConnections = { sourceGroups: [], connections: [], findings: [], notes: [] };
  for (const [layer, groups] of input.layerGroups) {
    const covers = coverInputs({ view, layers, layer, arrivals: arrivals.get(layer) ?? [], sources, names });
    for (const [key, g] of covers.created) {
      sources.set(key, g);
      names.add(g.group.name);
      out.sourceGroups.push(g);
    }
    const own = layerWeights(view, layer, groups, covers.covered);
    out.connections.push(...own.connections);
    out.findings.push(...covers.findings, ...own.findings);
    out.notes.push(...own.notes);
  }
  return out;
}
