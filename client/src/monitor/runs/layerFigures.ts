// What the monitor shows of one logged layer: per-unit relative deficits (computed in float64,
// sent as float32) and the layer's scalars for the time series.
import type { MonitorLayerFrame, MonitorLayerScalars } from '../../../../server/src/contract/monitor';
import type { LayerRecord } from '../../../../server/src/contract/balanceLog';

export function unitCount(l: LayerRecord): number {
  return (l.in ?? l.deficit)!.length;
}

/** |IN − OUT| / (IN + OUT); NaN for a dead unit (IN = OUT = 0). */
export function relativeDeficit(inCost: number, outCost: number): number {
  const sum = inCost + outCost;
  return sum === 0 ? NaN : Math.abs(inCost - outCost) / sum;
}

/**
 * Series scalars of a layer. Computed from IN/OUT when logged (the logged scalars could be
 * stale or rounded); with relative deficits only, the total deficit is the logged
 * `totalDeficit`, else Σ of the relative deficits (the absolute costs are unknown).
 */
export function layerScalars(l: LayerRecord): MonitorLayerScalars {
  const weightNorm = l.weightNorm ?? NaN;
  if (l.in && l.out) {
    let total = 0;
    let R = 0;
    for (let u = 0; u < l.in.length; u++) {
      total += Math.abs(l.in[u] - l.out[u]);
      R += (l.in[u] + l.out[u]) / 2;
    }
    return { totalDeficit: total, R, weightNorm };
  }
  let sum = 0;
  for (const d of l.deficit!) if (!Number.isNaN(d)) sum += d;
  return { totalDeficit: l.totalDeficit ?? sum, R: l.R ?? NaN, weightNorm };
}

export function layerFrame(l: LayerRecord): MonitorLayerFrame {
  const frame: MonitorLayerFrame = { name: l.name, relativeDeficit: new Float32Array(unitCount(l)) };
  if (l.in && l.out) {
    for (let u = 0; u < l.in.length; u++) frame.relativeDeficit[u] = relativeDeficit(l.in[u], l.out[u]);
    frame.in = Float32Array.from(l.in);
    frame.out = Float32Array.from(l.out);
  } else frame.relativeDeficit.set(l.deficit!);
  return frame;
}
