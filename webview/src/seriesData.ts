// A run's time series as it grows: the host sends it whole, then appends. Arrays grow by
// doubling so an append of one step does not copy 10,000.

import { BALANCE_FIELDS, type MonitorBalanceEvents, type MonitorSeries } from '../../server/src/contract/monitor';

/** k in `values[(i * layers + l) * 3 + k]`. */
export const TOTAL_DEFICIT = 0;
export const R_VALUE = 1;
export const WEIGHT_NORM = 2;
export const SERIES_KINDS = 3;

export class RunSeries {
  length = 0;
  private stepsBuf = new Float64Array(16);
  private timesBuf = new Float64Array(16);
  private valuesBuf: Float64Array;
  /** log10 of each value (NaN where ≤ 0 or not finite): the log axes read these, computed once per step. */
  private logBuf: Float64Array;
  /** Per kind, the smallest and largest positive finite value (what a log axis can show); kept up to date on append. */
  readonly positiveRange: [number, number][] = [[Infinity, -Infinity], [Infinity, -Infinity], [Infinity, -Infinity]];
  /** Balance events: their series indices, ascending, and BALANCE_FIELDS figures each. */
  balanceCount = 0;
  private balanceIndexBuf = new Float64Array(8);
  private balanceValuesBuf = new Float64Array(8 * BALANCE_FIELDS);

  constructor(
    readonly layers: string[],
    readonly units: number[],
  ) {
    this.valuesBuf = new Float64Array(16 * this.stride);
    this.logBuf = new Float64Array(16 * this.stride);
  }

  static from(s: MonitorSeries): RunSeries {
    const r = new RunSeries(s.layers.slice(), s.units.slice());
    r.append(s.steps, s.times, s.values, s.balance);
    return r;
  }

  /** Values per step. */
  get stride(): number {
    return this.layers.length * SERIES_KINDS;
  }

  get steps(): Float64Array {
    return this.stepsBuf.subarray(0, this.length);
  }

  get times(): Float64Array {
    return this.timesBuf.subarray(0, this.length);
  }

  get values(): Float64Array {
    return this.valuesBuf.subarray(0, this.length * this.stride);
  }

  get logValues(): Float64Array {
    return this.logBuf.subarray(0, this.length * this.stride);
  }

  append(steps: Float64Array, times: Float64Array, values: Float64Array, balance?: MonitorBalanceEvents): void {
    const n = steps.length;
    if (times.length !== n || values.length !== n * this.stride) {
      throw new Error(`series append: ${n} steps, ${times.length} times, ${values.length} values for ${this.layers.length} layers`);
    }
    if (balance) this.checkBalance(balance, this.length + n);
    const need = this.length + n;
    if (need > this.stepsBuf.length) {
      let cap = this.stepsBuf.length;
      while (cap < need) cap *= 2;
      this.stepsBuf = grow(this.stepsBuf, cap);
      this.timesBuf = grow(this.timesBuf, cap);
      this.valuesBuf = grow(this.valuesBuf, cap * this.stride);
      this.logBuf = grow(this.logBuf, cap * this.stride);
    }
    this.stepsBuf.set(steps, this.length);
    this.timesBuf.set(times, this.length);
    const at = this.length * this.stride;
    this.valuesBuf.set(values, at);
    this.length = need;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      this.logBuf[at + i] = v > 0 && v < Infinity ? Math.log10(v) : NaN;
      if (v > 0 && v < Infinity) {
        const r = this.positiveRange[i % SERIES_KINDS]!;
        if (v < r[0]) r[0] = v;
        if (v > r[1]) r[1] = v;
      }
    }
    if (balance) this.appendBalance(balance);
  }

  /** Balance events must fall inside the series, ascending, after those already known. */
  private checkBalance(b: MonitorBalanceEvents, length: number): void {
    const m = b.index.length;
    if (b.values.length !== m * BALANCE_FIELDS) throw new Error(`balance events: ${m} indices but ${b.values.length} values (${BALANCE_FIELDS} each)`);
    let prev = this.balanceCount > 0 ? this.balanceIndexBuf[this.balanceCount - 1]! : -1;
    for (let e = 0; e < m; e++) {
      const i = b.index[e]!;
      if (!Number.isInteger(i) || i <= prev || i >= length) throw new Error(`balance event at series index ${i}: not an ascending index within the ${length} steps`);
      prev = i;
    }
  }

  private appendBalance(b: MonitorBalanceEvents): void {
    const need = this.balanceCount + b.index.length;
    if (need > this.balanceIndexBuf.length) {
      let cap = this.balanceIndexBuf.length;
      while (cap < need) cap *= 2;
      this.balanceIndexBuf = grow(this.balanceIndexBuf, cap);
      this.balanceValuesBuf = grow(this.balanceValuesBuf, cap * BALANCE_FIELDS);
    }
    this.balanceIndexBuf.set(b.index, this.balanceCount);
    this.balanceValuesBuf.set(b.values, this.balanceCount * BALANCE_FIELDS);
    this.balanceCount = need;
  }

  /** Series index of balance event `e`. */
  balanceIndex(e: number): number {
    return this.balanceIndexBuf[e]!;
  }

  /** Figure `k` (BALANCE_DELTA_R …) of balance event `e`. */
  balanceValue(e: number, k: number): number {
    return this.balanceValuesBuf[e * BALANCE_FIELDS + k]!;
  }

  /** The balance event at series index `index`, or -1. */
  balanceAt(index: number): number {
    let lo = 0;
    let hi = this.balanceCount - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.balanceIndexBuf[mid]!;
      if (v === index) return mid;
      if (v < index) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  reset(): void {
    this.length = 0;
    this.balanceCount = 0;
    for (const r of this.positiveRange) {
      r[0] = Infinity;
      r[1] = -Infinity;
    }
  }

  value(index: number, layer: number, kind: number): number {
    return this.valuesBuf[(index * this.layers.length + layer) * SERIES_KINDS + kind]!;
  }

  step(index: number): number {
    return this.stepsBuf[index]!;
  }

  /** Steps only ever go up within a log; when they do not (a resumed run), x falls back to the index. */
  isMonotone(): boolean {
    for (let i = 1; i < this.length; i++) if (this.stepsBuf[i]! < this.stepsBuf[i - 1]!) return false;
    return true;
  }

  /** The last index whose step is ≤ `step` (0 when all are later; -1 when empty). Assumes monotone steps. */
  indexAtOrBefore(step: number): number {
    if (this.length === 0) return -1;
    let lo = 0;
    let hi = this.length - 1;
    if (this.stepsBuf[0]! > step) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.stepsBuf[mid]! <= step) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

function grow(a: Float64Array, cap: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(cap);
  b.set(a);
  return b;
}
