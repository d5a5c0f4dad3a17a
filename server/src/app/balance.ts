// Predicting and applying a fix, for every front end: solve for a scope (predicting ΔR), scale
// the weights, write the balanced checkpoint through its format with the one verification
// policy (writeChecked.ts), and analyse what was written when asked. A Workbench keeps the last
// opened network and its solutions, so that predicting a fix (a code action resolved) and then
// applying it (the command run) solve once.
import { realpathSync } from 'node:fs';
import { scaledTensors, unitScales } from '../engine/applyScales';
import { analyze } from '../engine/analyze';
import { balance, METHODS, type Method } from '../engine/balance';
import type { Problem } from '../engine/compile';
import type { SolveResult } from '../engine/solverTypes';
import { ComputeCancelled } from '../compute/backend';
import { cpuBackend } from '../compute/cpuBackend';
import { attachCompute } from '../compute/select';
import { ChangedWhileReading } from '../errors/fileError';
import { assertUnchanged } from '../formats/core/checkpoint';
import { defaultOutputPath } from '../formats/core/safeWrite';
import { scopeLabel } from '../contract/requests';
import { analyzeNetwork } from './analyse';
import { backendFor } from './compute';
import type { NetworkOpener, OpenedNetwork } from './openNetwork';
import { compileFor, regularizerOf } from './problem';
import type { AnalysisOptions, BalanceOutcome, BalanceRequest, JobHooks, OutputSpec, Prediction, PredictRequest, SolveSpec } from './requests';
import { ownCheckRuns, writeChecked } from './writeChecked';

/** The solver methods a request may name. */
export const BALANCE_METHODS: readonly string[] = METHODS;

interface Loaded {
  key: string;
  opened: OpenedNetwork;
  problem: Problem;
  solutions: Map<string, SolveResult>;
}

function isUnchanged(opened: OpenedNetwork): boolean {
  try {
    assertUnchanged(opened.checkpoint);
    return true;
  } catch (e) {
    if (e instanceof ChangedWhileReading) return false;
    throw e;
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** Where a balanced copy of `path` goes. */
function outputPathOf(path: string, output: OutputSpec, extension: string): string {
  if (output.kind === 'in-place') return path;
  if (output.kind === 'path') return output.path;
  return defaultOutputPath(path, extension);
}

export class Workbench {
  private current: Loaded | undefined;

  /**
   * `keep`: hold the network between jobs (the language server's worker). Without it (one
   * command), a balance that is not verified scales the weights where they are.
   */
  constructor(private readonly open: NetworkOpener, private readonly keep = true) {}

  load(path: string, options: AnalysisOptions): Loaded {
    const key = `${path}\0${options.p}\0${options.regularizer ?? ''}\0${options.activation}`;
    if (this.current && this.current.key === key && isUnchanged(this.current.opened)) return this.current;
    // Let the previous network go before reading the next: two large models need not fit at once.
    this.current = undefined;
    const opened = this.open(path, options.activation);
    const problem = compileFor(path, opened.network, regularizerOf(options));
    this.current = { key, opened, problem, solutions: new Map() };
    return this.current;
  }

  forget(): void {
    this.current = undefined;
  }

  solve(loaded: Loaded, spec: SolveSpec, hooks: JobHooks, span: [number, number]): SolveResult | undefined {
    const key = `${scopeLabel(spec.scope)} ${spec.method ?? 'optimal'} ${spec.tolerance} ${spec.seed ?? ''} ${spec.maxIterations ?? ''}`;
    const known = loaded.solutions.get(key);
    if (known) return known;
    const method = (spec.method ?? 'optimal') as Method;
    if (!METHODS.includes(method)) throw new Error(`unknown method "${spec.method}"; expected one of ${METHODS.join(', ')}`);
    const device = this.useCompute(loaded, spec, hooks, span);
    // Cancelled while the weights were uploaded: no solve (it would run a pass on the CPU).
    if (device === undefined) return undefined;
    let first: number | undefined;
    let lastPost = 0;
    const result = cancellable(() => balance(loaded.problem, {
      method,
      scope: spec.scope,
      tolerance: spec.tolerance,
      seed: spec.seed,
      maxIterations: spec.maxIterations,
      onProgress: (p) => {
        if (hooks.cancelled()) return false;
        const now = Date.now();
        if (now - lastPost >= 100) {
          lastPost = now;
          // Progress as the share of the way (in log scale) from the first deficit seen to the tolerance.
          first ??= p.maxRelativeDeficit;
          const done = first > spec.tolerance && p.maxRelativeDeficit > 0 ? Math.log(first / p.maxRelativeDeficit) / Math.log(first / spec.tolerance) : 1;
          const f = Math.min(1, Math.max(0, done));
          hooks.progress({ percent: span[0] + f * (span[1] - span[0]), message: `iteration ${p.iteration} on ${device}: max relative deficit ${p.maxRelativeDeficit.toExponential(2)}` });
        }
        return true;
      },
    }));
    if (!result || result.cancelled) return undefined;
    loaded.solutions.set(key, result);
    return result;
  }

  /**
   * Puts the problem's products on the backend the spec asks for (started once, then reused),
   * with cancellation reaching into device waits; returns the device for progress messages.
   */
  private useCompute(loaded: Loaded, spec: SolveSpec, hooks: JobHooks, span: [number, number]): string | undefined {
    const problem = loaded.problem;
    if (!spec.compute || problem.regularizer.power === undefined) return 'cpu';
    const { backend, note } = backendFor(spec.compute, problem.network);
    if (note) {
      hooks.note?.(note);
      hooks.progress({ percent: span[0], message: note });
    }
    if (backend !== cpuBackend) hooks.progress({ percent: span[0], message: `uploading the weights to ${backend.device} (${backend.description})` });
    backend.setCancel(() => hooks.cancelled());
    const attached = cancellable(() => attachCompute(problem, backend));
    return attached === undefined ? undefined : backend.device;
  }

  predict(req: PredictRequest, hooks: JobHooks): Prediction | undefined {
    hooks.progress({ percent: 0, message: 'reading the checkpoint' });
    const loaded = this.load(req.path, req.options);
    const r = this.solve(loaded, req.solve, hooks, [20, 100]);
    return r && predictionOf(r);
  }

  async balance(req: BalanceRequest, hooks: JobHooks): Promise<BalanceOutcome> {
    hooks.progress({ percent: 0, message: 'reading the checkpoint' });
    const loaded = this.load(req.path, req.options);
    const { opened, problem } = loaded;
    const about = { input: req.path, format: opened.format.id, regularizer: problem.regularizer.label };
    if (problem.nVars === 0) return { cancelled: false, ...about, nothingToBalance: true, whyNothing: whyNothingToBalance(problem, opened.notes) };
    if (hooks.cancelled()) return { cancelled: true };
    const r = this.solve(loaded, req.solve, hooks, [10, 70]);
    if (!r) return { cancelled: true };
    const device = problem.compute?.device ?? 'cpu';
    hooks.progress({ percent: 70, message: `scaling the weights on ${device}` });
    const layerScales = scalesByLayer(problem, r.x);
    // Not kept, and nothing will compare the original network with the copy (no check, or the
    // format's own runtime runs both files): the weights are scaled where they are, no copy.
    const originalUnneeded = !req.verify.enabled || ownCheckRuns(opened.format);
    const changed = cancellable(() => scaledTensors(problem, r.x, { inPlace: !this.keep && originalUnneeded }));
    if (!changed) return { cancelled: true };
    // The last point where stopping leaves no trace: past it the write runs to completion.
    if (hooks.cancelled()) return { cancelled: true };
    const target = outputPathOf(req.path, req.output, opened.format.extensions[0]);
    // An output path that names the input itself (or a link to it) replaces it: keep the original.
    const inPlace = req.output.kind === 'in-place' || sameFile(target, req.path);
    if (inPlace && req.output.kind === 'path') hooks.note?.(`${target} is the input itself: it is replaced, and the original kept as ${req.path}.bak`);
    hooks.progress({ percent: 75, message: `writing ${target}` });
    const result = await writeChecked(opened, changed, target, {
      backup: inPlace,
      verify: req.verify,
      activation: req.options.activation,
      onChecking: (message) => hooks.progress({ percent: 85, message }),
      cancelled: () => hooks.cancelled(),
    });
    if (result.cancelled) return { cancelled: true };
    if (inPlace || !this.keep) this.forget();
    let analysis: BalanceOutcome['analysis'];
    if (req.analyseWritten) {
      hooks.progress({ percent: 94, message: 'analysing the written file' });
      const started = performance.now();
      const reopened = this.open(target, req.options.activation);
      analysis = analyzeNetwork(target, reopened, compileFor(target, reopened.network, regularizerOf(req.options)), req.options, started);
    }
    return {
      cancelled: false,
      ...about,
      output: target,
      written: result.written,
      solve: { ...predictionOf(r), maxRelativeDeficitBefore: r.maxRelativeDeficitBefore },
      verification: result.verification,
      writtenVerification: result.verification,
      verificationSkipped: result.skipped,
      analysis,
      device,
      layerScales,
    };
  }
}

/** Why no unit can be balanced: per hidden layer, the reasons the check gives, with their unit counts. */
function whyNothingToBalance(problem: Problem, notes: readonly string[]): string[] {
  const a = analyze(problem, undefined, { tolerance: 0, skipPredictions: true });
  const hidden = a.layers.filter((l) => l.role === 'hidden');
  // No hidden layer at all: what the reader and the builder noted says why.
  if (hidden.length === 0) return ['the network has no hidden layers (nothing between its inputs and outputs to rescale)', ...notes];
  return hidden.flatMap((l) => l.reasons.map((r) => `${l.name}: ${r.units} unit${r.units === 1 ? '' : 's'} ${r.reason}`));
}

/** The function's value, or undefined when a device wait was cancelled (its worker was stopped). */
function cancellable<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ComputeCancelled) return undefined;
    throw e;
  }
}

function predictionOf(r: SolveResult): Prediction {
  return {
    RBefore: r.RBefore,
    RAfter: r.RAfter,
    deltaR: r.RBefore - r.RAfter,
    maxRelativeDeficitAfter: r.maxRelativeDeficitAfter,
    iterations: r.iterations,
    converged: r.converged,
    method: r.method,
  };
}

/** Λ of every unit of every hidden layer (1 for units that were not scaled). */
function scalesByLayer(problem: Problem, x: Float64Array): Record<string, number[]> {
  const lambda = unitScales(problem, x);
  const out: Record<string, number[]> = {};
  problem.network.groups.forEach((g, gi) => {
    if (g.role === 'hidden') out[g.name] = Array.from(lambda.subarray(problem.groupOffset[gi], problem.groupOffset[gi] + g.size));
  });
  return out;
}
