// Residual joins: where two groups' values are added, both must be scaled alike, so the groups are
// tied; a join whose sides do not line up keeps both sides' units visible.
import type { Tie } from '../../../engine/network';
import type { ChannelState } from './passThrough';
import { nodeLabel } from '../attrs';
import type { NodeRecord } from '../proto';
import type { Finding, GroupInfo, GroupTrace } from './types';

interface MergeRecord {
  input: number;
  group: GroupInfo;
  state: ChannelState;
}

export interface Residuals {
  ties: Tie[];
  findings: Finding[];
}

/** The ties and reasons of every residual Add/Sub the traces met (in the order they met them). */
export function tieResiduals(traces: readonly GroupTrace[]): Residuals {
  const merges = new Map<NodeRecord, MergeRecord[]>();
  for (const t of traces) {
    for (const m of t.merges) {
      const list = merges.get(m.node) ?? [];
      list.push({ input: m.input, group: t.group, state: m.state });
      merges.set(m.node, list);
    }
  }
  const ties: Tie[] = [];
  const findings: Finding[] = [];
  for (const [node, records] of merges) {
    const side = (i: number) => records.filter((r) => r.input === i);
    const [a, b] = [side(0), side(1)];
    const label = `${node.opType} node '${nodeLabel(node)}'`;
    if (a.length === 0 || b.length === 0) {
      const other = node.inputs[a.length === 0 ? 0 : 1];
      for (const r of records) findings.push({ group: r.group, reason: `is joined by ${label} with ${other}, which does not scale with it` });
      continue;
    }
    const same = (x: MergeRecord, y: MergeRecord) => x.state.axis === y.state.axis && x.state.rank === y.state.rank && x.state.start === y.state.start && x.state.inner === y.state.inner && x.group.group.size === y.group.group.size;
    const matched = new Set<MergeRecord>();
    for (const y of b) {
      const x = a.find((r) => same(r, y));
      if (!x) continue;
      matched.add(x).add(y);
      if (x.group !== y.group) ties.push({ groups: [x.group.group.name, y.group.group.name], reason: `residual ${label}` });
    }
    for (const r of records) if (!matched.has(r)) findings.push({ group: r.group, reason: `is joined by ${label} with values whose units do not line up with its own` });
  }
  return { ties, findings };
}
