// Each group's final form: its activation and where it was read from, its role (a layer whose
// values reach only the graph's outputs is an output layer) and, when its units cannot be
// balanced, the reasons it stays visible.
import { identity } from '../../../engine/activation';
import type { UnitGroup } from '../../../engine/network';
import { nodeLabel } from '../attrs';
import type { GraphView } from '../graphView';
import { leadsOnlyToOutputs } from './reach';
import type { GroupInfo, GroupTrace, Layers } from './types';

export interface FinishInput {
  view: GraphView;
  layers: Layers;
  /** Every group, in the order made. */
  groups: readonly GroupInfo[];
  traces: ReadonlyMap<GroupInfo, GroupTrace>;
  /** Each group's reasons found by the earlier phases. */
  reasons: ReadonlyMap<GroupInfo, readonly string[]>;
}

export interface FinishedGroups {
  groups: UnitGroup[];
  notes: string[];
}

export function finishGroups(input: FinishInput): FinishedGroups {
  const notes: string[] = [];
  const groups = input.groups.map((info) => {
    const { group, notes: own } = finishGroup(input, info);
    notes.push(...own);
    return group;
  });
  return { groups, notes };
}

function finishGroup(input: FinishInput, g: GroupInfo): { group: UnitGroup; notes: string[] } {
  const group: UnitGroup = { ...g.group };
  const notes: string[] = [];
  const reasons = [...(input.reasons.get(g) ?? [])];
  const fix = (reason: string) => {
    if (!reasons.includes(reason)) reasons.push(reason);
  };
  const n = g.origin;
  const t = input.traces.get(g);
  if (!n || !t) {
    if (reasons.length > 0 && group.role === 'hidden') group.visible = reasons.map((reason) => ({ reason }));
    return { group, notes };
  }
  const first = t.paths.find((p) => p.activation?.kind === 'other') ?? t.paths[0];
  if (g.ownActivation) {
    group.activation = g.ownActivation.activation;
    group.activationSource = g.ownActivation.source;
    if (g.ownActivation.activation.kind === 'other') fix(`RNN '${nodeLabel(n)}' uses ${g.ownActivation.activation.name}, which is not positively homogeneous`);
  } else {
    group.activation = first?.activation ?? identity();
    const direct = `ONNX node '${nodeLabel(n)}' (${n.opType}): its output is used directly (linear)`;
    const named = first && first.nodes.length > 0 ? `ONNX node${first.nodes.length > 1 ? 's' : ''} ${first.nodes.map((x) => `'${x}'`).join(' → ')}` : direct;
    group.activationSource = first?.joinedAt ? `${first.nodes.length > 0 ? named : direct}, up to ${first.joinedAt}` : named;
    const kinds = new Set(t.paths.map((p) => (p.activation ? JSON.stringify(p.activation) : 'identity')));
    if (kinds.size > 1) notes.push(`${group.name}: its values reach later layers through different activations; listed as ${group.activation.name ?? group.activation.kind}`);
  }
  // A layer whose values reach no other layer, only the graph's outputs (perhaps through a
  // Softmax or Sigmoid), is an output layer: visible by role, whatever stopped its scale.
  if (!t.reachesLayer && (t.reachesOutput || leadsOnlyToOutputs(input.view, input.layers, n))) {
    group.role = 'output';
    return { group, notes };
  }
  if (t.reachesOutput) fix('is also a graph output');
  if (!t.reachesLayer && !t.reachesOutput && !t.joined && reasons.length === 0) fix('its values are not used by any layer or output');
  if (reasons.length > 0) group.visible = reasons.map((reason) => ({ reason }));
  return { group, notes };
}
