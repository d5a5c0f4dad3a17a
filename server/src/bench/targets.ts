// The targets the benchmark checks, and whether one measured network meets them.
import type { NetworkResult } from './measure';

export const TOLERANCE = 1e-7;
export const SOLVE_PASS_MAX = 10;
export const PAPER_SPEEDUP_MIN = 50;
export const RSS_WEIGHT_FACTOR = 1.5;
export const MB = 2 ** 20;
export const RSS_ALLOWANCE_BYTES = 100 * MB;

export function solvePassRatio(r: NetworkResult): number {
  return r.solve.medianMs / r.pass.medianMs;
}

export function rssLimitBytes(r: NetworkResult): number {
  return RSS_WEIGHT_FACTOR * r.weightBytes + RSS_ALLOWANCE_BYTES;
}

/** Paper-schedule time over fast-solver time; only a lower bound when the schedule was capped. */
export function paperSpeedup(r: NetworkResult): { value: number; lowerBound: boolean } {
  return { value: r.paper.ms / r.solve.medianMs, lowerBound: !r.paper.converged };
}

export function solved(r: NetworkResult): boolean {
  return r.solve.converged && r.solve.deficitAfter <= TOLERANCE;
}

export interface Verdict {
  target: string;
  network: string;
  met: boolean;
  detail: string;
}

export function verdicts(r: NetworkResult): Verdict[] {
  const out: Verdict[] = [
    { target: `fast solver reaches ${TOLERANCE.toExponential(0)}`, network: r.name, met: solved(r), detail: r.solve.deficitAfter.toExponential(1) },
    {
      target: `peak RSS ≤ ${RSS_WEIGHT_FACTOR}×weights + ${RSS_ALLOWANCE_BYTES / MB} MB`,
      network: r.name,
      met: r.peakRssBytes <= rssLimitBytes(r),
      detail: `${(r.peakRssBytes / MB).toFixed(0)} / ${(rssLimitBytes(r) / MB).toFixed(0)} MB`,
    },
  ];
  if (r.layerChain) {
    const q = solvePassRatio(r);
    out.push({ target: `solve/pass ≤ ${SOLVE_PASS_MAX} (layer chains)`, network: r.name, met: q <= SOLVE_PASS_MAX, detail: q.toFixed(1) });
  }
  if (r.paperTarget) {
    const s = paperSpeedup(r);
    // A capped run only bounds the speed-up from below, which meets the target only if the bound does.
    out.push({ target: `paper/fast ≥ ${PAPER_SPEEDUP_MIN}× (autoencoder)`, network: r.name, met: s.value >= PAPER_SPEEDUP_MIN, detail: `${s.lowerBound ? '>' : ''}${s.value.toFixed(0)}×` });
  }
  return out;
}
