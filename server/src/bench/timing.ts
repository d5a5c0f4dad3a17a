// Wall-clock timing of repeated runs, reported as medians: a median ignores the odd slow run
// (a JIT tier-up, a collection of earlier garbage, another process) that a mean would absorb.

const collect = (globalThis as { gc?: () => void }).gc;

/**
 * Collects earlier garbage (when run with --expose-gc) so that it is not charged to what comes
 * next. Only before a series, never between its runs: on a 2-core machine the concurrent
 * sweeping a full collection leaves behind slows the next run (a 1 ms pass measured 2 ms).
 */
export function settle(): void {
  collect?.();
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface RunPlan {
  /** Untimed runs first (at least one, more until warmupMs), so that timed runs see optimised code and filled caches. */
  warmupMs: number;
  minRuns: number;
  /** Small networks are run more often, until this much time is spent or maxRuns is reached. */
  minTotalMs: number;
  maxRuns: number;
}

export interface Timed<T> {
  times: number[];
  medianMs: number;
  /** The last run's result (every run computes the same thing). */
  result: T;
}

function clocked<T>(fn: () => T): { ms: number; result: T } {
  const t0 = performance.now();
  const result = fn();
  return { ms: performance.now() - t0, result };
}

/** One run from a settled heap: for one-off steps like building and compiling a network. */
export function timeOnce<T>(fn: () => T): { ms: number; result: T } {
  settle();
  return clocked(fn);
}

export function timeRuns<T>(fn: () => T, plan: RunPlan): Timed<T> {
  settle();
  const warm = performance.now();
  do fn();
  while (performance.now() - warm < plan.warmupMs);
  const first = clocked(fn);
  const times = [first.ms];
  let result = first.result;
  let total = first.ms;
  while (times.length < plan.minRuns || (total < plan.minTotalMs && times.length < plan.maxRuns)) {
    const run = clocked(fn);
    times.push(run.ms);
    total += run.ms;
    result = run.result;
  }
  return { times, medianMs: median(times), result };
}
