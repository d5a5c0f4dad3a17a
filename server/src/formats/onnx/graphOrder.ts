// Topological order of a graph's nodes. ONNX graphs must be acyclic and assign each value once;
// a file that breaks either is refused here, so later passes may follow edges without guards.
import type { GraphRecord, NodeRecord } from './proto';
import { FileError } from '../../errors/fileError';

function label(n: NodeRecord, i: number): string {
  return n.name ? `${n.name} (${n.opType})` : `#${i} (${n.opType} → ${n.outputs[0] ?? '?'})`;
}

/** Names a subgraph reads from the scopes around it (If/Loop/Scan bodies use outer values directly). */
export function outerNames(g: GraphRecord): Set<string> {
  const local = new Set<string>();
  for (const v of g.inputs) local.add(v.name);
  for (const t of g.initializers) local.add(t.name);
  for (const n of g.nodes) for (const o of n.outputs) local.add(o);
  const used = new Set<string>();
  for (const n of g.nodes) {
    for (const i of n.inputs) if (i && !local.has(i)) used.add(i);
    for (const a of n.attributes) for (const sub of [...(a.g ? [a.g] : []), ...a.graphs]) for (const o of outerNames(sub)) if (!local.has(o)) used.add(o);
  }
  return used;
}

/** Every input a node depends on, including what its subgraphs read from outside. */
export function nodeDependencies(n: NodeRecord): string[] {
  const deps = n.inputs.filter((i) => i !== '');
  for (const a of n.attributes) for (const sub of [...(a.g ? [a.g] : []), ...a.graphs]) deps.push(...outerNames(sub));
  return deps;
}

/** Node indices in an order where each node follows the producers of its inputs; throws on a cycle. */
export function topologicalOrder(g: GraphRecord, path: string): number[] {
  const where = g.path === 'main' ? 'the graph' : `the subgraph ${g.path}`;
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    for (const o of n.outputs) {
      if (o === '') continue;
      const prev = producer.get(o);
      if (prev !== undefined) throw new FileError(path, `in ${where}, value "${o}" is produced by two nodes: ${label(g.nodes[prev], prev)} and ${label(n, i)}`);
      producer.set(o, i);
    }
  });
  const waiting = new Int32Array(g.nodes.length);
  const dependents: number[][] = g.nodes.map(() => []);
  g.nodes.forEach((n, i) => {
    for (const d of new Set(nodeDependencies(n))) {
      const p = producer.get(d);
      if (p === undefined) continue;
      waiting[i]++;
      dependents[p].push(i);
    }
  });
  const order: number[] = [];
  for (let i = 0; i < g.nodes.length; i++) if (waiting[i] === 0) order.push(i);
  for (let k = 0; k < order.length; k++) {
    for (const j of dependents[order[k]]) if (--waiting[j] === 0) order.push(j);
  }
  if (order.length < g.nodes.length) {
    const stuck = g.nodes.map((n, i) => (waiting[i] > 0 ? label(n, i) : '')).filter(Boolean);
    throw new FileError(path, `${where} has a cycle: ${stuck.length} nodes wait on each other (${stuck.slice(0, 4).join(', ')}${stuck.length > 4 ? ', …' : ''})`);
  }
  return order;
}
