// The per-step scalars of a run in flat growable arrays (MonitorSeries layout), plus where each
// step came from (a byte range, a checkpoint): what a run keeps in memory however long it is.
import type { BalanceEvent } from '../../../../server/src/contract/balanceLog';
import { BALANCE_FIELDS, type MonitorBalanceEvents, type MonitorLayerScalars, type MonitorSeries } from '../../../../server/src/contract/monitor';

const K = 3;

class Growable {
  data: Float64Array;
  length = 0;
  constructor(capacity = 256) {
    this.data = new Float64Array(capacity);
  }
  reserve(n: number): void {
    if (this.length + n <= this.data.length) return;
    let cap = this.data.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Float64Array(cap);
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  push(v: number): void {
    this.reserve(1);
    this.data[this.length++] = v;
  }
  view(from = 0, to = this.length): Float64Array {
    return this.data.slice(from, to);
  }
}

export interface StepScalars {
  step: number;
  time: number;
  /** Scalars per layer name; layers missing from the step get NaN. */
  layers: Map<string, MonitorLayerScalars>;
  /** Units per layer name, as seen in this step. */
  units: Map<string, number>;
  /** The network was balanced at this step. */
  balance?: BalanceEvent;
}

/** True when the layout (layers, their unit counts) grew: the series must be sent again whole. */
export type AddResult = { index: number; relayout: boolean; newLayers: string[] };

export class SeriesStore {
  layers: string[] = [];
  units: number[] = [];
  private readonly layerIndex = new Map<string, number>();
  private readonly steps = new Growable();
  private readonly times = new Growable();
  private values = new Growable();
  /** Balance events: series index, and BALANCE_FIELDS figures each (sparse: most steps have none). */
  private readonly balanceIndex = new Growable(16);
  private readonly balanceValues = new Growable(16 * BALANCE_FIELDS);

  get length(): number {
    return this.steps.length;
  }

  add(s: StepScalars): AddResult {
    const newLayers: string[] = [];
    let relayout = false;
    for (const [name, n] of s.units) {
      const li = this.layerIndex.get(name);
      if (li === undefined) newLayers.push(name);
      else if (n > this.units[li]) {
        this.units[li] = n;
        relayout = true;
      }
    }
    if (newLayers.length > 0) {
      // Earlier steps get NaN for layers they did not log: rebuild the flat array once.
      const L0 = this.layers.length;
      for (const name of newLayers) {
        this.layerIndex.set(name, this.layers.length);
        this.layers.push(name);
        this.units.push(s.units.get(name)!);
      }
      const L1 = this.layers.length;
      const next = new Growable(Math.max(256, this.length * L1 * K * 2));
      next.reserve(this.length * L1 * K);
      next.data.fill(NaN, 0, this.length * L1 * K);
      for (let i = 0; i < this.length; i++) next.data.set(this.values.data.subarray(i * L0 * K, (i + 1) * L0 * K), i * L1 * K);
      next.length = this.length * L1 * K;
      this.values = next;
      // The very first record sets the layout: nothing to re-send yet.
      relayout = relayout || L0 > 0;
    }
    const L = this.layers.length;
    this.values.reserve(L * K);
    for (let l = 0; l < L; l++) {
      const v = s.layers.get(this.layers[l]);
      this.values.push(v ? v.totalDeficit : NaN);
      this.values.push(v ? v.R : NaN);
      this.values.push(v ? v.weightNorm : NaN);
    }
    if (s.balance) {
      const b = s.balance;
      this.balanceIndex.push(this.steps.length);
      for (const v of [b.deltaR, b.RBefore, b.RAfter, b.iterations, b.maxDeficit, b.converged === undefined ? NaN : b.converged ? 1 : 0]) this.balanceValues.push(v);
    }
    this.steps.push(s.step);
    this.times.push(s.time);
    return { index: this.length - 1, relayout, newLayers: this.layers.length > newLayers.length ? newLayers : [] };
  }

  series(runId: string): MonitorSeries {
    const s: MonitorSeries = { runId, layers: [...this.layers], units: [...this.units], steps: this.steps.view(), times: this.times.view(), values: this.values.view() };
    const balance = this.balanceFrom(0);
    if (balance) s.balance = balance;
    return s;
  }

  /** Balance events at series index `from` or later (indices still count from the start); undefined when none. */
  private balanceFrom(from: number): MonitorBalanceEvents | undefined {
    const idx = this.balanceIndex;
    let e = idx.length;
    while (e > 0 && idx.data[e - 1] >= from) e--;
    if (e === idx.length) return undefined;
    return { index: idx.view(e), values: this.balanceValues.view(e * BALANCE_FIELDS) };
  }

  /** Steps from index `from` on, for an append message. */
  tail(runId: string, from: number): { runId: string; steps: Float64Array; times: Float64Array; values: Float64Array; balance?: MonitorBalanceEvents } {
    const w = this.layers.length * K;
    const t: { runId: string; steps: Float64Array; times: Float64Array; values: Float64Array; balance?: MonitorBalanceEvents } = { runId, steps: this.steps.view(from), times: this.times.view(from), values: this.values.view(from * w, this.length * w) };
    const balance = this.balanceFrom(from);
    if (balance) t.balance = balance;
    return t;
  }

  clear(): void {
    this.layers = [];
    this.units = [];
    this.layerIndex.clear();
    this.steps.length = 0;
    this.times.length = 0;
    this.values = new Growable();
    this.balanceIndex.length = 0;
    this.balanceValues.length = 0;
  }
}
