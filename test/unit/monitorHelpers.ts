// Shared by the monitor tests: a recorder of run events, and balance-log records to write.
import type { MonitorBalanceEvents, MonitorSeries } from '../../server/src/contract/monitor';
import type { RunEvents } from '../../client/src/monitor/runs/runSource';

export type Ev =
  | { kind: 'series'; s: MonitorSeries }
  | { kind: 'append'; steps: Float64Array; times: Float64Array; values: Float64Array; balance?: MonitorBalanceEvents }
  | { kind: 'reset' }
  | { kind: 'notice'; level: string; message: string }
  | { kind: 'label'; label: string };

export class Recorder implements RunEvents {
  readonly events: Ev[] = [];
  series(s: MonitorSeries): void {
    this.events.push({ kind: 'series', s });
  }
  append(a: { steps: Float64Array; times: Float64Array; values: Float64Array; balance?: MonitorBalanceEvents }): void {
    this.events.push({ kind: 'append', steps: a.steps, times: a.times, values: a.values, ...(a.balance ? { balance: a.balance } : {}) });
  }
  reset(): void {
    this.events.push({ kind: 'reset' });
  }
  notice(n: { level: string; message: string }): void {
    this.events.push({ kind: 'notice', level: n.level, message: n.message });
  }
  label(label: string): void {
    this.events.push({ kind: 'label', label });
  }
  of<K extends Ev['kind']>(kind: K): Extract<Ev, { kind: K }>[] {
    return this.events.filter((e): e is Extract<Ev, { kind: K }> => e.kind === kind);
  }
  kinds(): string[] {
    return this.events.map((e) => e.kind);
  }
  /** The steps the host would hold now: the last series plus appends after it. */
  steps(): number[] {
    let out: number[] = [];
    for (const e of this.events) {
      if (e.kind === 'series') out = [...e.s.steps];
      else if (e.kind === 'reset') out = [];
      else if (e.kind === 'append') out.push(...e.steps);
    }
    return out;
  }
  clear(): void {
    this.events.length = 0;
  }
}

/** IN/OUT of unit u of layer l at step s: deterministic, distinct, positive. */
export function costsAt(s: number, l: number, units: number): { in: number[]; out: number[] } {
  const inC: number[] = [];
  const outC: number[] = [];
  for (let u = 0; u < units; u++) {
    inC.push(1 + ((s * 7 + l * 3 + u) % 13) / 4);
    outC.push(0.5 + ((s * 5 + l + u * 11) % 17) / 8);
  }
  return { in: inC, out: outC };
}

export function recordLine(step: number, opts: { layers?: string[]; units?: number; run?: string; balance?: unknown } = {}): string {
  const layers = (opts.layers ?? ['fc1', 'fc2']).map((name, l) => ({ name, ...costsAt(step, l, opts.units ?? 4), weightNorm: step / 10 + l }));
  return JSON.stringify({ v: 1, run: opts.run ?? 'test run', step, time: 1_700_000_000 + step, p: 2, layers, ...(opts.balance !== undefined ? { balance: opts.balance } : {}) }) + '\n';
}
