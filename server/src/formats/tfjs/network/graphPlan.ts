// Graph-model phase 1: the nodes in an order where every node comes after what it reads, with
// how often each value is read (a bias or activation folds into its input's group only when
// nothing else reads it).
import type { TfjsGraphNode, TfjsGraphStructure } from '../read';
import { inputKey } from './ops';

export interface NodePlan {
  order: TfjsGraphNode[];
  /** Reads of each value, by value key (control inputs do not count). */
  uses: ReadonlyMap<string, number>;
}

export function planNodes(s: TfjsGraphStructure): NodePlan {
  const order = topologicalOrder(s);
  const uses = new Map<string, number>();
  for (const n of order) for (const i of n.input) {
    const k = inputKey(i);
    if (k) uses.set(k, (uses.get(k) ?? 0) + 1);
  }
  return { order, uses };
}

function topologicalOrder(s: TfjsGraphStructure): TfjsGraphNode[] {
  const byName = new Map(s.nodes.map((n) => [n.name, n]));
  const state = new Map<string, 1 | 2>();
  const out: TfjsGraphNode[] = [];
  const visit = (n: TfjsGraphNode) => {
    const st = state.get(n.name);
    if (st === 2) return;
    if (st === 1) throw new Error(`the graph has a cycle through node ${n.name}`);
    state.set(n.name, 1);
    for (const i of n.input) {
      const k = inputKey(i);
      if (!k) continue;
      const src = byName.get(k.split(':')[0]);
      if (!src) throw new Error(`node ${n.name} reads "${i}", which is not a node of the graph`);
      visit(src);
    }
    state.set(n.name, 2);
    out.push(n);
  };
  for (const n of s.nodes) visit(n);
  return out;
}
