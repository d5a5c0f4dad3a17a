// Groups of units: their unique names, one per layer (per direction for an RNN), and the reasons
// the phases found, gathered per group.
import { leakyRelu, other, relu, type Activation } from '../../../engine/activation';
import type { UnitGroup } from '../../../engine/network';
import { attr, attrString, nodeLabel } from '../attrs';
import { isNumber } from '../dims';
import type { GraphView } from '../graphView';
import type { NodeRecord } from '../proto';
import { isConv } from './layers';
import type { Finding, GroupInfo, GroupTrace, Layer, LayerGroups, Layers } from './types';

/** `wanted`, or `wanted #k` when taken; the name is added to `taken`. */
function uniqueName(wanted: string, taken: Set<string>): string {
  let name = wanted;
  for (let k = 2; taken.has(name); k++) name = `${wanted} #${k}`;
  taken.add(name);
  return name;
}

export function newGroup(name: string, size: number, role: UnitGroup['role'], taken: Set<string>): UnitGroup {
  return { name: uniqueName(name, taken), size, role };
}

/** One hidden group per layer (per direction for an RNN), named after the node. */
export function layerGroups(view: GraphView, layers: Layers): LayerGroups {
  const taken = new Set<string>();
  const out = new Map<Layer, GroupInfo[]>();
  for (const layer of layers.values()) {
    const n = layer.node;
    const units = layer.weight.shape[layer.targetAxis];
    const groups: GroupInfo[] = [];
    if (layer.kind === 'RNN') {
      const dirs = layer.weight.shape[0];
      const direction = attrString(n, 'direction', 'forward');
      for (let d = 0; d < dirs; d++) {
        const suffix = dirs === 1 ? '' : d === 0 ? '/forward' : '/backward';
        groups.push({ group: newGroup(`${nodeLabel(n)}${suffix}`, units, 'hidden', taken), origin: n, ownActivation: rnnActivation(n, d, direction) });
      }
    } else {
      const group = newGroup(nodeLabel(n), units, 'hidden', taken);
      const dims = view.dims.get(n.outputs[0]);
      if (isConv(layer) && dims && dims.slice(2).every(isNumber)) group.spatial = dims.slice(2).map((d) => d.coef);
      groups.push({ group, origin: n });
    }
    out.set(layer, groups);
  }
  return out;
}

function rnnActivation(n: NodeRecord, d: number, direction: string): { activation: Activation; source: string } {
  const names = attr(n, 'activations')?.strings ?? [];
  const name = names[d] ?? names[0] ?? 'Tanh';
  const alphas = attr(n, 'activation_alpha')?.floats ?? [];
  const source = `ONNX node '${nodeLabel(n)}' (RNN, ${direction}, activations=[${names.join(', ') || 'Tanh (default)'}])`;
  if (name === 'Relu') return { activation: relu(), source };
  if (name === 'LeakyRelu') return { activation: leakyRelu(alphas[d] ?? alphas[0] ?? 0.01), source };
  return { activation: other(name), source };
}

/** Each group's reasons so far: its trace's first, then the findings in the order given, without repeats. */
export function reasonsOf(traces: readonly GroupTrace[], ...findings: readonly (readonly Finding[])[]): Map<GroupInfo, string[]> {
  const out = new Map<GroupInfo, string[]>();
  const add = (g: GroupInfo, reason: string) => {
    const list = out.get(g) ?? [];
    if (!list.includes(reason)) list.push(reason);
    out.set(g, list);
  };
  for (const t of traces) for (const r of t.reasons) add(t.group, r);
  for (const list of findings) for (const f of list) add(f.group, f.reason);
  return out;
}
