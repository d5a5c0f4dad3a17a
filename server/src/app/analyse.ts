// Analysing a checkpoint: the figures a listing shows (each unit's costs, λ* and ΔR, each
// layer's tied optimum), the per-layer check report, and the inspection of what was read.
import { analyze, type Analysis } from '../engine/analyze';
import type { Problem } from '../engine/compile';
import { varStats, type VarStats } from '../engine/evaluate';
import { LocalBalancer, optimalLogFactor, profileCost } from '../engine/localBalance';
import type { Network } from '../engine/network';
import { lp } from '../engine/regularizer';
import { assertUnchanged } from '../formats/core/checkpoint';
import { UNIT_STATUSES, type CheckpointAnalysis, type LayerAnalysis, type TensorSlot } from './analysis';
import { backendFor } from './compute';
import { openNetworkFile, type NetworkOpener, type OpenedNetwork } from './openNetwork';
import { compileFor, regularizerOf } from './problem';
import type { AnalysisOptions, ComputeSpec, JobHooks } from './requests';
import { DTYPE_EPSILON, type DType } from '../tensor/dtype';

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
  const problem = compileFor(path, opened.network, regularizerOf(options));
  const result = analyzeNetwork(path, opened, problem, options, started);
  // A training run may have saved over the file meanwhile: the caller retries once it settles.
  assertUnchanged(opened.checkpoint);
  return result;
}

/** Tries when a file keeps changing while a front end that cannot wait for it to settle reads it. */
export const READ_ATTEMPTS = 4;

export interface CheckRequest {
  path: string;
  options: AnalysisOptions;
  /** A unit is out of balance when its relative deficit exceeds this. */
  tolerance: number;
  /** Where the costs and their sums run; the CPU unless a device is named. */
  compute?: Partial<ComputeSpec>;
  /** Also predict each fix: every out-of-balance unit's λ* and ΔR, each layer's tied optimum. */
  predict?: boolean;
}

/** One unit's best rescaling on its own: λ* and the fall in R it brings. */
export interface UnitFix {
  index: number;
  relativeDeficit: number;
  lambda: number;
  deltaR: number;
}

/** What balancing a hidden layer would bring, predicted from the weights as they are. */
export interface LayerFixes {
  layer: string;
  /** ΔR of balancing each unit alone, summed (exact for the layer when no unit is coupled to another). */
  eachDeltaR: number;
  eachExact: boolean;
  /** One λ* for the whole layer, when its units share a degree. */
  tied?: { lambda: number; deltaR: number };
  /** Units above the tolerance, worst first. */
  units: UnitFix[];
}

export interface CheckOutcome {
  opened: OpenedNetwork;
  analysis: Analysis;
  device: string;
  predictions?: LayerFixes[];
}

/** The per-layer report of `synbal check`: costs, deficits and verdicts at a tolerance. */
export function checkFile(req: CheckRequest, hooks?: Pick<JobHooks, 'note'>): CheckOutcome {
  const opened = openNetworkFile(req.path, { activation: req.options.activation, attempts: READ_ATTEMPTS });
  const reg = regularizerOf(req.options);
  // The costs and their row and column sums (the check's one pass over the weights) run on the device.
  const chosen = reg.power !== undefined ? backendFor(req.compute, opened.network, 'cpu') : undefined;
  if (chosen?.note) hooks?.note?.(chosen.note);
  const problem = compileFor(req.path, opened.network, reg, chosen?.backend);
  const analysis = analyze(problem, undefined, { tolerance: req.tolerance, skipPredictions: true });
  const predictions = req.predict ? fixesOf(analyzeNetwork(req.path, opened, problem, req.options, performance.now()), req.tolerance) : undefined;
  return { opened, analysis, device: chosen?.backend.device ?? 'cpu', predictions };
}

/** The listing's per-unit predictions, as a check report shows them: hidden layers, units above the tolerance. */
function fixesOf(a: CheckpointAnalysis, tolerance: number): LayerFixes[] {
  return a.layers
    .filter((l) => l.role === 'hidden' && l.balanceable > 0)
    .map((l) => {
      const c = l.columns;
      const units: UnitFix[] = [];
      for (let u = 0; u < l.units; u++) {
        if (c.rel[u] > tolerance && Number.isFinite(c.lambda[u])) units.push({ index: u, relativeDeficit: c.rel[u], lambda: c.lambda[u], deltaR: c.deltaR[u] });
      }
      units.sort((x, y) => y.relativeDeficit - x.relativeDeficit || x.index - y.index);
      return { layer: l.name, eachDeltaR: l.eachDeltaR, eachExact: l.eachExact, ...(l.tied ? { tied: l.tied } : {}), units };
    });
}

export interface Inspection {
  file: string;
  format: string;
  formatDescription: string;
  groups: { name: string; role: string; units: number; activation: string | null; balanceable: number }[];
  tensors: { name: string; dtype: string; shape: readonly number[] }[];
  connections: number;
  ties: { groups: readonly string[]; reason: string }[];
  notes: string[];
}

/** What was read: layers, units, activations, what is balanceable, tensors, ties, notes. */
export function inspectFile(path: string, activation: string): Inspection {
  const o = openNetworkFile(path, { activation, attempts: READ_ATTEMPTS });
  const problem = compileFor(path, o.network, lp(2));
  const net = o.network;
  return {
    file: path,
    format: o.format.id,
    formatDescription: o.format.description,
    groups: net.groups.map((g, gi) => ({
      name: g.name,
      role: g.role,
      units: g.size,
      activation: g.activation ? (g.activation.kind === 'other' ? g.activation.name : (g.activation.name ?? g.activation.kind)) : null,
      // Units with a variable: a tie class's variables are listed under one of its groups only.
      balanceable: problem.unitVar.subarray(problem.groupOffset[gi], problem.groupOffset[gi] + g.size).filter((v) => v >= 0).length,
    })),
    tensors: net.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
    connections: net.connections.length,
    ties: (net.ties ?? []).map((t) => ({ groups: t.groups, reason: t.reason })),
    notes: o.notes,
  };
}
