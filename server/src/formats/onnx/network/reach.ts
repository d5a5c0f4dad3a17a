// Walks over the graph's data flow that do not depend on any group: which values units may reach,
// whether a value has a layer upstream, where a layer's outputs end, who else reads a weight.
import { nodeLabel } from '../attrs';
import type { GraphView } from '../graphView';
import type { NodeRecord } from '../proto';
import type { Layers } from './types';

/** View nodes: a weight read through them is still the same stored tensor. */
export const VIEW_OPS = new Set(['Identity', 'Cast', 'Transpose', 'Unsqueeze', 'Squeeze', 'Reshape', 'Concat']);

/** `known` and the values forward of `from` up to the next layers: what some group's units may reach. */
export function extendReachable(view: GraphView, layers: Layers, known: ReadonlySet<string>, from: readonly string[]): Set<string> {
  const reachable = new Set(known);
  const stack = [...from];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (reachable.has(v)) continue;
    reachable.add(v);
    for (const u of view.uses(v)) if (!layers.has(u.node)) stack.push(...u.node.outputs.filter(Boolean));
  }
  return reachable;
}

export function hasLayerUpstream(view: GraphView, layers: Layers, value: string): boolean {
  const seen = new Set<string>();
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = view.producer.get(v);
    if (!p) continue;
    if (layers.has(p.node)) return true;
    stack.push(...p.node.inputs.filter(Boolean));
  }
  return false;
}

/** Whether a node's outputs flow, through non-layers only, into a graph output and into no layer. */
export function leadsOnlyToOutputs(view: GraphView, layers: Layers, n: NodeRecord): boolean {
  let output = false;
  const seen = new Set<string>();
  const stack = n.outputs.filter(Boolean);
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (view.outputs.has(v)) output = true;
    for (const u of view.uses(v)) {
      if (layers.has(u.node)) return false;
      stack.push(...u.node.outputs.filter(Boolean));
    }
  }
  return output;
}

/** Reason the stored value is read by anything but this node (through view nodes), if it is. */
export function sharedUse(view: GraphView, value: string, node: NodeRecord): string | undefined {
  const stack = [value];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (view.outputs.has(v)) return `${value} is also a graph output`;
    for (const u of view.uses(v)) {
      if (u.node === node) continue;
      if (VIEW_OPS.has(u.node.opType)) stack.push(...u.node.outputs.filter(Boolean));
      else return `${value} is also used by ${u.node.opType} node '${nodeLabel(u.node)}'`;
    }
  }
  return undefined;
}
