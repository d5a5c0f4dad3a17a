// The operations: balance a unit, a layer (each unit, or tied), or the whole network by a
// chosen method. Everything works on log-scales x; applyScales writes them into weights.
import type { Problem } from './compile';
import { maxOf, relativeDeficits, varStats } from './evaluate';
import { LocalBalancer } from './localBalance';
import { solveNewton } from './newton';
import { redBlackApplies, solveRedBlack } from './redBlack';
import { runSchedule, SCHEDULES, type ScheduleName } from './schedules';
import type { SolveOptions, SolveResult } from './solverTypes';

export type Method = 'optimal' | 'newton' | 'red-black' | ScheduleName;
export const METHODS: readonly Method[] = ['optimal', 'newton', 'red-black', ...SCHEDULES];

export type Scope =
  | { kind: 'network' }
  | { kind: 'layer'; layer: string; tied?: boolean }
  | { kind: 'unit'; layer: string; index: number };

export interface BalanceOptions extends SolveOptions {
  method?: Method;
  scope?: Scope;
  /** Start from these log-scales instead of the identity. */
  start?: Float64Array;
}

function layerIndex(problem: Problem, name: string): number {
  const gi = problem.network.groups.findIndex((g) => g.name === name);
  if (gi < 0) throw new Error(`no layer named "${name}" in ${problem.network.name}`);
  return gi;
}

function localResult(problem: Problem, x0: Float64Array, x: Float64Array, method: string): SolveResult {
  const before = varStats(problem, x0);
  const after = varStats(problem, x);
  return {
    x,
    method,
    iterations: 1,
    converged: true,
    RBefore: before.R,
    RAfter: after.R,
    maxRelativeDeficitBefore: maxOf(relativeDeficits(problem, before)),
    maxRelativeDeficitAfter: maxOf(relativeDeficits(problem, after)),
    passes: 2,
  };
}

export function balance(problem: Problem, opts: BalanceOptions = {}): SolveResult {
  const x0 = opts.start ? Float64Array.from(opts.start) : new Float64Array(problem.nVars);
  const scope = opts.scope ?? { kind: 'network' };
  if (scope.kind === 'unit') {
    const gi = layerIndex(problem, scope.layer);
    const g = problem.network.groups[gi];
    if (!(scope.index >= 0 && scope.index < g.size)) throw new Error(`layer ${g.name} has no unit ${scope.index} (it has ${g.size})`);
    const id = problem.groupOffset[gi] + scope.index;
    const v = problem.unitVar[id];
    if (v < 0) throw new Error(`unit ${g.name}#${scope.index} cannot be balanced: ${problem.units[id].reason ?? problem.units[id].status}`);
    const x = Float64Array.from(x0);
    new LocalBalancer(problem, x).balance([v]);
    return localResult(problem, x0, x, 'unit');
  }
  if (scope.kind === 'layer') {
    const gi = layerIndex(problem, scope.layer);
    const vars = Array.from(problem.groupVars[gi]);
    if (vars.length === 0) throw new Error(`layer ${scope.layer} has no balanceable units`);
    const x = Float64Array.from(x0);
    const lb = new LocalBalancer(problem, x);
    if (scope.tied) lb.balance(vars);
    else for (const v of vars) lb.balance([v]);
    return localResult(problem, x0, x, scope.tied ? 'layer-tied' : 'layer');
  }
  const method = opts.method ?? 'optimal';
  switch (method) {
    case 'optimal':
      return redBlackApplies(problem) ? solveRedBlack(problem, x0, opts) : solveNewton(problem, x0, opts);
    case 'red-black':
      return solveRedBlack(problem, x0, opts);
    case 'newton':
      return solveNewton(problem, x0, opts);
    default:
      if (!SCHEDULES.includes(method)) throw new Error(`unknown method "${method}"; expected one of ${METHODS.join(', ')}`);
      return runSchedule(problem, x0, method, opts);
  }
}
