// What survives a window reload (`setState`), read back defensively: the stored object may
// come from an older version of the panel.

import type { MonitorViewState } from '../../server/src/contract/monitor';

export function readViewState(raw: unknown): MonitorViewState {
  const state: MonitorViewState = { sources: [], followLive: true, selected: {} };
  if (!raw || typeof raw !== 'object') return state;
  const r = raw as Partial<Record<keyof MonitorViewState, unknown>>;
  if (typeof r.followLive === 'boolean') state.followLive = r.followLive;
  if (Array.isArray(r.sources)) {
    for (const s of r.sources) {
      if (s && typeof s === 'object' && (s.kind === 'log' || s.kind === 'checkpoints') && typeof s.source === 'string') {
        state.sources.push({ kind: s.kind, source: s.source });
      }
    }
  }
  if (r.selected && typeof r.selected === 'object') {
    for (const [k, v] of Object.entries(r.selected as Record<string, unknown>)) {
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0) state.selected[k] = v;
    }
  }
  return state;
}

export function sameViewState(a: MonitorViewState, b: MonitorViewState): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
