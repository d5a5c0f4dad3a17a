// The balance report of a network: per unit, per layer and overall. What listings,
// diagnostics and the CLI show.
import { activationName } from './activation';
import type { Problem, UnitStatus } from './compile';
import { maxOf, relativeDeficits, unitStats, varStats } from './evaluate';
import { LocalBalancer } from './localBalance';

export interface UnitReport {
  index: number;
  status: UnitStatus;
  reason?: string;
  /** Cost of incoming and outgoing weights (Σ|w|^p for Lp), self-loops excluded. */
  in: number;
  out: number;
  /** The paper's deficit (IN − OUT)² and the scale-free |IN − OUT|/(IN + OUT), of the unit's scale variable. */
  deficit: number;
  relativeDeficit: number;
  /** Optimal factor λ* and predicted decrease of R when this unit alone is balanced. */
  lambda?: number;
  deltaR?: number;
  /** Index of the unit's scale variable (units joined by a tie share one). */
  variable: number;
}

export interface LayerReport {
  name: string;
  role: string;
  activation?: string;
  activationSource?: string;
  units: number;
  balanceable: number;
  inTotal: number;
  outTotal: number;
  maxRelativeDeficit: number;
  meanRelativeDeficit: number;
  /** Units above the tolerance. */
  unbalanced: number;
  /** Reasons for units that cannot be balanced, with counts. */
  reasons: { reason: string; units: number }[];
  unitReports: UnitReport[];
}

export interface Analysis {
  network: string;
  regularizer: string;
  tolerance: number;
  parameters: number;
  units: number;
  balanceable: number;
  dead: number;
  unbalanced: number;
  R: number;
  totalDeficit: number;
  maxRelativeDeficit: number;
  layers: LayerReport[];
}

export interface AnalyzeOptions {
  tolerance?: number;
  /** Skip per-unit λ* and ΔR (one extra local solve per unit). */
  skipPredictions?: boolean;
}

export function analyze(problem: Problem, x: Float64Array = new Float64Array(problem.nVars), opts: AnalyzeOptions = {}): Analysis {
  const tol = opts.tolerance ?? 1e-7;
  const vs = varStats(problem, x);
  const rel = relativeDeficits(problem, vs);
  const us = unitStats(problem, x);
  const lb = new LocalBalancer(problem, Float64Array.from(x));
  const net = problem.network;
  let params = 0;
  for (const t of net.tensors) params += t.data.length;
  const layers: LayerReport[] = net.groups.map((g, gi) => {
    const off = problem.groupOffset[gi];
    const reports: UnitReport[] = [];
    const reasons = new Map<string, number>();
    let inTotal = 0;
    let outTotal = 0;
    let maxRel = 0;
    let sumRel = 0;
    let balanceable = 0;
    let unbalanced = 0;
    for (let u = 0; u < g.size; u++) {
      const id = off + u;
      const info = problem.units[id];
      const v = problem.unitVar[id];
      const r: UnitReport = {
        index: u,
        status: info.status,
        in: us.inCost[id],
        out: us.outCost[id],
        deficit: (us.inCost[id] - us.outCost[id]) ** 2,
        relativeDeficit: 0,
        variable: v,
      };
      if (info.reason) r.reason = info.reason;
      inTotal += r.in;
      outTotal += r.out;
      if (v >= 0) {
        balanceable++;
        r.deficit = (vs.inCost[v] - vs.outCost[v]) ** 2;
        r.relativeDeficit = rel[v];
        maxRel = Math.max(maxRel, rel[v]);
        sumRel += rel[v];
        if (rel[v] > tol) unbalanced++;
        if (!opts.skipPredictions) {
          const pred = lb.predict([v]);
          if (pred) {
            r.lambda = Math.exp(pred.logFactor);
            r.deltaR = pred.deltaR;
          }
        }
      } else if (g.role === 'hidden') {
        const why = info.reason ?? info.status;
        reasons.set(why, (reasons.get(why) ?? 0) + 1);
      }
      reports.push(r);
    }
    return {
      name: g.name,
      role: g.role,
      activation: g.activation ? activationName(g.activation) : undefined,
      activationSource: g.activationSource,
      units: g.size,
      balanceable,
      inTotal,
      outTotal,
      maxRelativeDeficit: maxRel,
      meanRelativeDeficit: balanceable ? sumRel / balanceable : 0,
      unbalanced,
      reasons: [...reasons].map(([reason, units]) => ({ reason, units })),
      unitReports: reports,
    };
  });
  let totalDeficit = 0;
  for (let v = 0; v < problem.nVars; v++) totalDeficit += (vs.inCost[v] - vs.outCost[v]) ** 2;
  return {
    network: net.name,
    regularizer: problem.regularizer.label,
    tolerance: tol,
    parameters: params,
    units: problem.nUnits,
    balanceable: problem.nVars === 0 ? 0 : layers.reduce((s, l) => s + l.balanceable, 0),
    dead: problem.units.filter((u) => u.status === 'dead').length,
    unbalanced: layers.reduce((s, l) => s + l.unbalanced, 0),
    R: vs.R,
    totalDeficit,
    maxRelativeDeficit: maxOf(rel),
    layers,
  };
}
