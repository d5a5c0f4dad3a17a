// From view connections to connections on the stored tensors the weights are made of, keeping
// only tensors that may be rewritten: float, writable, read by this one node alone.
import type { AxisMap, Connection } from '../../../engine/network';
import { isFloatDType, loadTensor, type TensorEntry } from '../../core/checkpoint';
import type { Tensor } from '../../../tensor/tensor';
import { nodeLabel } from '../attrs';
import type { ConstView, GraphView } from '../graphView';
import type { NodeRecord } from '../proto';
import { sharedUse, VIEW_OPS } from './reach';
import { useCopyName } from '../uses';
import type { Finding, PendingConnection, ViewConnection } from './types';

export interface StoredConnections {
  connections: Connection[];
  tensors: Tensor[];
  findings: Finding[];
  notes: string[];
}

type StoredPart = { entry: TensorEntry; value: string; c: Omit<Connection, 'tensor'> };

export function storedConnections(view: GraphView, pending: readonly PendingConnection[]): StoredConnections {
  const findings: Finding[] = [];
  const connections: Connection[] = [];
  const entries = new Map<string, TensorEntry>();
  /** Tensors of the network that are one node's copy of a shared stored tensor. */
  const copies = new Map<string, TensorEntry>();
  const owners = new Map<string, Set<NodeRecord>>();
  const mapped: { conn: ViewConnection; node: NodeRecord; entry: TensorEntry; name: string; c: Omit<Connection, 'tensor'> }[] = [];
  for (const { node, conn, view: weights } of pending) {
    const m = mapToStored(conn, weights);
    const ends = [conn.to, ...(conn.from ? [conn.from] : [])];
    if (typeof m === 'string') {
      for (const g of ends) findings.push({ group: g, reason: `the weights of '${nodeLabel(node)}' ${m}` });
      continue;
    }
    for (const { entry, value, c } of m) {
      let why = entry.readOnlyReason ?? (isFloatDType(entry.dtype) ? undefined : `${entry.dtype} weights cannot be scaled`);
      let name = entry.name;
      const shared = why ? undefined : sharedUse(view, value, node);
      if (shared) {
        // Read by other nodes too: this node's use gets a copy of its own, if the node reads it directly.
        const copy = useCopyOf(view, entry, value, node);
        if (typeof copy === 'string') why = `${shared}, and ${copy}`;
        else name = copy.name;
      }
      if (why) {
        for (const g of ends) findings.push({ group: g, reason: `weights ${entry.name} cannot be rewritten: ${why}` });
        continue;
      }
      const set = owners.get(name) ?? new Set<NodeRecord>();
      set.add(node);
      owners.set(name, set);
      if (name === entry.name) entries.set(name, entry);
      else copies.set(name, entry);
      mapped.push({ conn, node, entry, name, c });
    }
  }
  for (const { conn, name, c } of mapped) {
    const set = owners.get(name)!;
    if (set.size > 1) {
      const names = [...set].map((x) => `'${nodeLabel(x)}'`).join(' and ');
      for (const g of [conn.to, ...(conn.from ? [conn.from] : [])]) findings.push({ group: g, reason: `weights ${name} are shared by nodes ${names}` });
    }
    connections.push({ ...(conn.label ? { name: `${name} (${conn.label})` } : {}), tensor: name, ...c });
  }
  const tensors: Tensor[] = [];
  for (const e of entries.values()) tensors.push(loadTensor(e));
  for (const [name, e] of copies) {
    const t = loadTensor(e);
    tensors.push({ name, dtype: t.dtype, shape: t.shape, data: t.data.slice() });
  }
  const shared = [...new Set([...copies.values()].map((e) => e.name))];
  const notes = shared.length ? [`${shared.length} stored tensor${shared.length === 1 ? ' is' : 's are'} read by several nodes (${shared.slice(0, 5).join(', ')}${shared.length > 5 ? ', …' : ''}): each use that scales gets a copy of its own, which a balanced file stores as a new initializer for that node alone (the tensors are no longer shared there)`] : [];
  return { connections, tensors, findings, notes };
}

/** Maps a connection on a view's axes onto the stored tensors it is made of, or says why it cannot. */
function mapToStored(conn: ViewConnection, view: ConstView): StoredPart[] | string {
  const out: StoredPart[] = [];
  const ranges: { axis: number; start: number; length: number }[] = [];
  const range = (m: AxisMap | undefined) => m && { axis: m.axis, start: m.start ?? 0, length: m.length ?? view.shape[m.axis] - (m.start ?? 0) };
  const tr = range(conn.target)!;
  const sr = range(conn.source);
  ranges.push(tr);
  if (sr) ranges.push(sr);
  for (const s of conn.select ?? []) ranges.push({ axis: s.axis, start: s.index, length: 1 });
  const multi = view.pieces.length > 1;
  for (const piece of view.pieces) {
    let shift = 0;
    if (multi) {
      const r = ranges.find((x) => x.axis === view.concatAxis);
      if (r) {
        if (r.start + r.length <= piece.start || r.start >= piece.start + piece.length) continue;
        if (r.start < piece.start || r.start + r.length > piece.start + piece.length) return `spans parts of ${view.via.join(', ') || 'a Concat'} that the engine cannot join`;
        shift = piece.start;
      }
    }
    const mapAxis = (m: AxisMap): AxisMap | string => {
      const stored = piece.axes[m.axis];
      if (stored === null || stored === undefined) return 'maps units onto an inserted axis';
      const s = (m.start ?? 0) - (multi && m.axis === view.concatAxis ? shift : 0);
      const res: AxisMap = { axis: stored };
      if (m.start !== undefined || (multi && m.axis === view.concatAxis)) res.start = s;
      if (m.length !== undefined) res.length = m.length;
      if (m.inner !== undefined && m.inner !== 1) res.inner = m.inner;
      return res;
    };
    const target = mapAxis(conn.target);
    if (typeof target === 'string') return target;
    const source = conn.source ? mapAxis(conn.source) : undefined;
    if (typeof source === 'string') return source;
    const select: { axis: number; index: number }[] = [];
    for (const s of conn.select ?? []) {
      const stored = piece.axes[s.axis];
      const index = s.index - (multi && s.axis === view.concatAxis ? shift : 0);
      if (stored === null || stored === undefined) {
        if (index !== 0) return 'selects on an inserted axis';
        continue;
      }
      select.push({ axis: stored, index });
    }
    const used = new Set([target.axis, ...(source ? [source.axis] : []), ...select.map((s) => s.axis)]);
    // Kernel taps: the stored axes left over, in the order the view shows them.
    const kernelAxes = piece.axes.filter((a): a is number => a !== null && !used.has(a));
    const c: Omit<Connection, 'tensor'> = {
      kind: conn.kind,
      to: conn.to.group.name,
      target,
      ...(conn.from ? { from: conn.from.group.name, source } : {}),
      ...(select.length ? { select } : {}),
      ...(conn.groups ? { groups: conn.groups } : {}),
      ...(conn.kind === 'conv' ? { kernelAxes } : {}),
      ...(conn.geometry ? { geometry: conn.geometry } : {}),
      ...(conn.delay ? { delay: conn.delay } : {}),
      ...(conn.regularized === false ? { regularized: false } : {}),
    };
    out.push({ entry: piece.entry, value: piece.value, c });
  }
  return out;
}

/**
 * The name of `node`'s own copy of a stored tensor other nodes read too, or why there can be none:
 * the writer adds the copy as a new initializer of the main graph and repoints the node's input.
 */
function useCopyOf(view: GraphView, entry: TensorEntry, value: string, node: NodeRecord): { name: string } | string {
  const graph = view.structure.model.graph;
  if (view.graph !== graph) return 'copies are made only in the main graph';
  if (view.structure.model.irVersion < 4) return 'copies need IR version 4 or later (initializers apart from inputs)';
  if (view.storedTensor(value)?.entryName !== entry.name || !graph.initializers.some((t) => t.name === value)) return `'${nodeLabel(node)}' reads it through other nodes, not as an initializer`;
  // The node that reads the initializer itself: `node`, or the first of a chain of view operators
  // (the exporter's Identity per use) that leads to `node` and nowhere else.
  for (const u of view.uses(value)) {
    const reader = u.node;
    if (reader !== node && !(VIEW_OPS.has(reader.opType) && leadsOnlyTo(view, reader, node))) continue;
    const inputs = reader.inputs.flatMap((v, k) => (v === value ? [k] : []));
    if (inputs.length !== 1) return `node '${nodeLabel(reader)}' reads it ${inputs.length} times`;
    const index = graph.nodes.indexOf(reader);
    if (index < 0 || !reader.inputFields || reader.frame === undefined) return `node '${nodeLabel(reader)}' is not a node of the main graph`;
    return { name: useCopyName({ base: entry.name, node: index, input: inputs[0] }) };
  }
  return `no node reads it on the way to '${nodeLabel(node)}' alone`;
}

/** Whether every value `from` computes goes (through view operators) to `to` and to nothing else. */
function leadsOnlyTo(view: GraphView, from: NodeRecord, to: NodeRecord): boolean {
  const stack = from.outputs.filter(Boolean);
  let reached = false;
  const seen = new Set<string>();
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (view.outputs.has(v)) return false;
    for (const u of view.uses(v)) {
      if (u.node === to) reached = true;
      else if (VIEW_OPS.has(u.node.opType)) stack.push(...u.node.outputs.filter(Boolean));
      else return false;
    }
  }
  return reached;
}
