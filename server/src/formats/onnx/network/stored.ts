// From view connections to connections on the stored tensors the weights are made of, keeping
// only tensors that may be rewritten: float, writable, read by this one node alone.
import type { AxisMap, Connection } from '../../../engine/network';
import { isFloatDType, loadTensor, type TensorEntry } from '../../core/checkpoint';
import type { Tensor } from '../../../tensor/tensor';
import { nodeLabel } from '../attrs';
import type { ConstView, GraphView } from '../graphView';
import type { NodeRecord } from '../proto';
import { sharedUse } from './reach';
import type { Finding, PendingConnection, ViewConnection } from './types';

export interface StoredConnections {
  connections: Connection[];
  tensors: Tensor[];
  findings: Finding[];
}

type StoredPart = { entry: TensorEntry; value: string; c: Omit<Connection, 'tensor'> };

export function storedConnections(view: GraphView, pending: readonly PendingConnection[]): StoredConnections {
  const findings: Finding[] = [];
  const connections: Connection[] = [];
  const entries = new Map<string, TensorEntry>();
  const owners = new Map<string, Set<NodeRecord>>();
  const mapped: { conn: ViewConnection; node: NodeRecord; entry: TensorEntry; c: Omit<Connection, 'tensor'> }[] = [];
  for (const { node, conn, view: weights } of pending) {
    const m = mapToStored(conn, weights);
    const ends = [conn.to, ...(conn.from ? [conn.from] : [])];
    if (typeof m === 'string') {
      for (const g of ends) findings.push({ group: g, reason: `the weights of '${nodeLabel(node)}' ${m}` });
      continue;
    }
    for (const { entry, value, c } of m) {
      const why = entry.readOnlyReason ?? (isFloatDType(entry.dtype) ? undefined : `${entry.dtype} weights cannot be scaled`) ?? sharedUse(view, value, node);
      if (why) {
        for (const g of ends) findings.push({ group: g, reason: `weights ${entry.name} cannot be rewritten: ${why}` });
        continue;
      }
      const set = owners.get(entry.name) ?? new Set<NodeRecord>();
      set.add(node);
      owners.set(entry.name, set);
      entries.set(entry.name, entry);
      mapped.push({ conn, node, entry, c });
    }
  }
  for (const { conn, entry, c } of mapped) {
    const set = owners.get(entry.name)!;
    if (set.size > 1) {
      const names = [...set].map((x) => `'${nodeLabel(x)}'`).join(' and ');
      for (const g of [conn.to, ...(conn.from ? [conn.from] : [])]) findings.push({ group: g, reason: `weights ${entry.name} are shared by nodes ${names}` });
    }
    connections.push({ ...(conn.label ? { name: `${entry.name} (${conn.label})` } : {}), tensor: entry.name, ...c });
  }
  const tensors: Tensor[] = [];
  for (const e of entries.values()) tensors.push(loadTensor(e));
  return { connections, tensors, findings };
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
