// Graph-model phase 1: the nodes in an order where every node comes after what it reads, with
// how often each value is read (a bias or activation folds into its input's group only when
// nothing else reads it). A while loop's back edge (NextIteration → Merge) is the one cycle a
// graph may have: it is left out of the order, and the loop's nodes become barriers.
import type { TfjsGraphNode, TfjsGraphStructure } from '../read';
import { inputKey } from './ops';

export interface NodePlan {
  order: TfjsGraphNode[];
  /** Reads of each value, by value key (control inputs do not count). */
  uses: ReadonlyMap<string, number>;
  /** What the order had to leave out. */
  notes: string[];
}

export function planNodes(s: TfjsGraphStructure): NodePlan {
  const notes: string[] = [];
  const order = topologicalOrder(s, notes);
  const uses = new Map<string, number>();
  for (const n of order) for (const i of n.input) {
    const k = inputKey(i);
    if (k) uses.set(k, (uses.get(k) ?? 0) + 1);
  }
  return { order, uses, notes };
}

/** Depth-first, without recursion (graphs thousands of nodes deep). */
function topologicalOrder(s: TfjsGraphStructure, notes: string[]): TfjsGraphNode[] {
  const byName = new Map(s.nodes.map((n) => [n.name, n]));
  const state = new Map<string, 1 | 2>();
  const out: TfjsGraphNode[] = [];
  let cycles = 0;
  const missing = new Set<string>();
  for (const root of s.nodes) {
    if (state.has(root.name)) continue;
    const stack: { n: TfjsGraphNode; i: number }[] = [{ n: root, i: 0 }];
    state.set(root.name, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.i >= top.n.input.length) {
        state.set(top.n.name, 2);
        out.push(top.n);
        stack.pop();
        continue;
      }
      const k = inputKey(top.n.input[top.i++]);
      if (!k) continue;
      const src = byName.get(k.split(':')[0]);
      if (!src) {
        missing.add(k.split(':')[0]);
        continue;
      }
      const st = state.get(src.name);
      if (st === 2) continue;
      if (st === 1) {
        cycles++;
        continue;
      }
      state.set(src.name, 1);
      stack.push({ n: src, i: 0 });
    }
  }
  if (cycles) notes.push(`the graph has ${cycles} back edge${cycles > 1 ? 's' : ''} (while loops); the nodes reading them are not followed`);
  if (missing.size) notes.push(`nodes read ${[...missing].slice(0, 3).join(', ')}${missing.size > 3 ? ', …' : ''}, which are not nodes of the graph; what reads them is not followed`);
  return out;
}
