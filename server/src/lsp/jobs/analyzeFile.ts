// One checkpoint from bytes to the figures a listing shows: open, build, compile, analyse
// (with each unit's λ* and ΔR, and each layer's tied optimum). Runs in a worker thread.
import { cpuBackend } from '../../compute/cpuBackend';
import { analyze } from '../../engine/analyze';
import { compile, type Problem } from '../../engine/compile';
import { varStats, type VarStats } from '../../engine/evaluate';
import { LocalBalancer, optimalLogFactor, profileCost } from '../../engine/localBalance';
import type { Network } from '../../engine/network';
import { lp } from '../../engine/regularizer';
import { assertUnchanged } from '../../formats/checkpoint';
import { UNIT_STATUSES, type CheckpointAnalysis, type LayerAnalysis, type TensorSlot } from '../analysisTypes';
import type { AnalysisOptions } from '../workerProtocol';
import type { NetworkOpener, OpenedNetwork } from './openNetwork';
import { DTYPE_EPSILON, type DType } from '../../tensor/dtype';

/** Machine epsilon of each stored dtype. */

export function compileFor(path: string, network: Network, p: number): Problem {
  try {
    return compile(network, lp(p), cpuBackend);
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(path) ? msg : `${path}: ${msg}`);
  }
}

function slotsByGroup(net: Network): Map<string, { incoming: TensorSlot[]; outgoing: TensorSlot[] }> {
  const tensors = new Map(net.tensors.map((t) => [t.name, t]));
  const out = new Map(net.groups.map((g) => [g.name, { incoming: [] as TensorSlot[], outgoing: [] as TensorSlot[] }]));
  for (const c of net.connections) {
    const t = c.tensor === undefined ? undefined : tensors.get(c.tensor);
    if (!t) continue;
    const shape = t.shape;
    const slot = (map: { axis: number; start?: number; length?: number; inner?: number }, other: string): TensorSlot => {
      const start = map.start ?? 0;
      return {
        connection: c.name ?? t.name,
        tensor: t.name,
        dtype: t.dtype,
        shape: [...shape],
        axis: map.axis,
        start,
        length: map.length ?? (shape[map.axis] ?? 0) - start,
        inner: map.inner ?? 1,
        select: (c.select ?? []).map((s) => ({ axis: s.axis, index: s.index })),
        kind: c.kind,
        other,
      };
    };
    out.get(c.to)?.incoming.push(slot(c.target, c.from ?? 'bias'));
    if (c.from !== undefined && c.source) out.get(c.from)?.outgoing.push(slot(c.source, c.to));
  }
  return out;
}

/** Layers whose units are joined to each other (recurrent self-connections, ties): balancing one moves another. */
function coupledLayers(net: Network): Set<string> {
  const s = new Set<string>();
  for (const c of net.connections) if (c.from !== undefined && c.from === c.to) s.add(c.to);
  for (const t of net.ties ?? []) for (const g of t.groups) s.add(g);
  return s;
}

/**
 * λ* and ΔR of scaling a set of variables together, from their stats at the identity: exact for
 * Lp when no edge joins two different variables of the set (what LocalBalancer.predict finds
 * with one more pass over the set's edges, column reads included: seconds on a 70M model).
 */
function predictFromStats(problem: Problem, vs: VarStats, vars: ArrayLike<number>): { lambda: number; deltaR: number } | undefined {
  const degree = problem.degree[vars[0]];
  let inSum = 0;
  let outSum = 0;
  let selfSum = 0;
  for (let k = 0; k < vars.length; k++) {
    const v = vars[k];
    if (problem.degree[v] !== degree) return undefined;
    inSum += vs.inFlux[v];
    outSum += vs.outFlux[v];
    selfSum += vs.selfFlux[v];
  }
  const prof = { degree, inSum, outSum, selfSum };
  const t = optimalLogFactor(problem, prof);
  if (t === undefined) return undefined;
  return { lambda: Math.exp(t), deltaR: profileCost(problem, prof, 0) - profileCost(problem, prof, t) };
}

export function analyzeNetwork(path: string, opened: OpenedNetwork, problem: Problem, options: AnalysisOptions, startedAt: number): CheckpointAnalysis {
  const power = problem.regularizer.power !== undefined;
  const a = analyze(problem, undefined, { tolerance: 0, skipPredictions: power });
  const net = problem.network;
  const slots = slotsByGroup(net);
  const coupled = coupledLayers(net);
  const x0 = new Float64Array(problem.nVars);
  const vs = power ? varStats(problem, x0) : undefined;
  const lb = new LocalBalancer(problem, x0);
  const layers: LayerAnalysis[] = a.layers.map((l, gi) => {
    const n = l.units;
    const columns = {
      in: new Float64Array(n),
      out: new Float64Array(n),
      rel: new Float64Array(n).fill(NaN),
      lambda: new Float64Array(n).fill(NaN),
      deltaR: new Float64Array(n).fill(NaN),
      status: new Uint8Array(n),
      reason: new Int32Array(n).fill(-1),
    };
    const reasonTexts: string[] = [];
    const reasonIndex = new Map<string, number>();
    let eachDeltaR = 0;
    for (const r of l.unitReports) {
      const u = r.index;
      columns.in[u] = r.in;
      columns.out[u] = r.out;
      columns.status[u] = UNIT_STATUSES.indexOf(r.status);
      if (r.variable >= 0) columns.rel[u] = r.relativeDeficit;
      const pred = vs && r.variable >= 0 ? predictFromStats(problem, vs, [r.variable]) : r.lambda !== undefined ? { lambda: r.lambda, deltaR: r.deltaR! } : undefined;
      if (pred) {
        columns.lambda[u] = pred.lambda;
        columns.deltaR[u] = pred.deltaR;
        eachDeltaR += pred.deltaR;
      }
      if (r.reason !== undefined) {
        let k = reasonIndex.get(r.reason);
        if (k === undefined) {
          k = reasonTexts.push(r.reason) - 1;
          reasonIndex.set(r.reason, k);
        }
        columns.reason[u] = k;
      }
    }
    let tied: LayerAnalysis['tied'];
    const vars = Array.from(problem.groupVars[gi]);
    if (l.role === 'hidden' && vars.length > 0) {
      if (vs && !coupled.has(l.name)) tied = predictFromStats(problem, vs, vars);
      else {
        try {
          const pred = lb.predict(vars);
          if (pred) tied = { lambda: Math.exp(pred.logFactor), deltaR: pred.deltaR };
        } catch {
          // Units of mixed homogeneity degrees have no common λ: no tied fix for this layer.
        }
      }
    }
    const s = slots.get(l.name) ?? { incoming: [], outgoing: [] };
    const roundoff = Math.max(0, ...[...s.incoming, ...s.outgoing].map((x) => DTYPE_EPSILON[x.dtype as DType] ?? 0));
    return {
      name: l.name,
      role: l.role,
      activation: l.activation,
      activationSource: l.activationSource,
      units: n,
      balanceable: l.balanceable,
      inTotal: l.inTotal,
      outTotal: l.outTotal,
      maxRelativeDeficit: l.maxRelativeDeficit,
      meanRelativeDeficit: l.meanRelativeDeficit,
      reasons: l.reasons,
      reasonTexts,
      columns,
      tied,
      roundoff,
      eachDeltaR,
      eachExact: !coupled.has(l.name),
      incoming: s.incoming,
      outgoing: s.outgoing,
    };
  });
  return {
    path,
    format: opened.format.id,
    formatDescription: opened.format.description,
    files: opened.checkpoint.files.map((f) => ({ ...f })),
    network: net.name,
    regularizer: a.regularizer,
    p: options.p,
    activation: options.activation,
    parameters: a.parameters,
    units: a.units,
    balanceable: a.balanceable,
    dead: a.dead,
    R: a.R,
    totalDeficit: a.totalDeficit,
    maxRelativeDeficit: a.maxRelativeDeficit,
    notes: opened.notes,
    layers,
    durationMs: performance.now() - startedAt,
  };
}

export function analyzeFile(path: string, options: AnalysisOptions, open: NetworkOpener): CheckpointAnalysis {
  const started = performance.now();
  const opened = open(path, options.activation);
  const problem = compileFor(path, opened.network, options.p);
  const result = analyzeNetwork(path, opened, problem, options, started);
  // A training run may have saved over the file meanwhile: the caller retries once it settles.
  assertUnchanged(opened.checkpoint);
  return result;
}
