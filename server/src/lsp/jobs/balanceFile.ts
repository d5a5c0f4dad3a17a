// Quick fixes, end to end, in a worker thread: solve for a scope (predicting ΔR), then write
// the balanced checkpoint through its format's writer, check it, and analyse what was written.
// The last opened network and its solutions are kept, so that resolving a code action (which
// solves) and then running it (which writes) solve once.
import { renameSync, rmSync, existsSync } from 'node:fs';
import { scaledTensors } from '../../engine/applyScales';
import { balance, METHODS, type Method } from '../../engine/balance';
import type { Problem } from '../../engine/compile';
import type { Network } from '../../engine/network';
import type { SolveResult } from '../../engine/solverTypes';
import { compareFunctions, verifyLimit } from '../../engine/verify';
import { ChangedWhileReading, assertUnchanged } from '../../formats/checkpoint';
import { onnxRuntimeProblem, verifyOnnx } from '../../formats/onnx/verify';
import { defaultOutputPath } from '../../formats/safeWrite';
import { scopeLabel, type FunctionCheck } from '../../contract/requests';
import type { AnalysisOptions, BalanceJob, BalanceOutcome, JobProgress, Prediction, PredictJob, SolveSpec } from '../workerProtocol';
import { analyzeNetwork, compileFor } from './analyzeFile';
import { ComputeCancelled } from '../../compute/backend';
import { cpuBackend } from '../../compute/cpuBackend';
import { attachCompute, selectBackend } from '../../compute/select';
import { parameterCount } from '../../engine/network';
import type { NetworkOpener, OpenedNetwork } from './openNetwork';

export interface JobHooks {
  cancelled(): boolean;
  progress(p: JobProgress): void;
}

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

export class Workbench {
  private current: Loaded | undefined;

  constructor(private readonly open: NetworkOpener) {}

  load(path: string, options: AnalysisOptions): Loaded {
    const key = `${path}\0${options.p}\0${options.activation}`;
    if (this.current && this.current.key === key && isUnchanged(this.current.opened)) return this.current;
    // Let the previous network go before reading the next: two large models need not fit at once.
    this.current = undefined;
    const opened = this.open(path, options.activation);
    const problem = compileFor(path, opened.network, options.p);
    this.current = { key, opened, problem, solutions: new Map() };
    return this.current;
  }

  forget(): void {
    this.current = undefined;
  }

  solve(loaded: Loaded, spec: SolveSpec, hooks: JobHooks, span: [number, number]): SolveResult | undefined {
    const key = `${scopeLabel(spec.scope)} ${spec.method ?? 'optimal'} ${spec.tolerance}`;
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
    const { backend, note } = selectBackend({ device: spec.compute.device, python: spec.compute.python }, parameterCount(problem.network));
    if (note) hooks.progress({ percent: span[0], message: note });
    if (backend !== cpuBackend) hooks.progress({ percent: span[0], message: `uploading the weights to ${backend.device} (${backend.description})` });
    backend.setCancel(() => hooks.cancelled());
    const attached = cancellable(() => attachCompute(problem, backend));
    return attached === undefined ? undefined : backend.device;
  }

  predict(job: PredictJob, hooks: JobHooks): Prediction | undefined {
    hooks.progress({ percent: 0, message: 'reading the checkpoint' });
    const loaded = this.load(job.path, job.options);
    const r = this.solve(loaded, job.solve, hooks, [20, 100]);
    return r && predictionOf(r);
  }

  async balance(job: BalanceJob, hooks: JobHooks): Promise<BalanceOutcome> {
    hooks.progress({ percent: 0, message: 'reading the checkpoint' });
    const loaded = this.load(job.path, job.options);
    if (hooks.cancelled()) return { cancelled: true };
    const r = this.solve(loaded, job.solve, hooks, [10, 70]);
    if (!r) return { cancelled: true };
    const { opened, problem } = loaded;
    hooks.progress({ percent: 70, message: `scaling the weights on ${problem.compute?.device ?? 'cpu'}` });
    const changed = cancellable(() => scaledTensors(problem, r.x));
    if (!changed) return { cancelled: true };
    hooks.progress({ percent: 72, message: 'checking that the function is unchanged' });
    const balanced: Network = { ...opened.network, tensors: opened.network.tensors.map((t) => changed.get(t.name) ?? t) };
    const limit = verifyLimit(changed.values());
    // An ONNX file is checked by running it (after writing): its graph holds more than the
    // engine's network models (BatchNorm's γ/σ, ops after the last scaled layer). Without a
    // loadable onnxruntime the engine's forward pass checks it like any other format.
    const ortProblem = opened.format.id === 'onnx' ? onnxRuntimeProblem() : undefined;
    const onnx = opened.format.id === 'onnx' && !ortProblem;
    const engineCheck = onnx ? { result: undefined, skipped: undefined } : check(opened.network, balanced);
    const verification = engineCheck.result;
    const skipped = ortProblem ? `${ortProblem}: checked with the engine's forward pass instead${engineCheck.skipped ? ` (which could not run either: ${engineCheck.skipped})` : ''}` : engineCheck.skipped;
    if (verification && verification.maxRelative > limit) {
      throw new Error(`${job.path}: the balanced network's outputs differ by ${verification.maxRelative.toExponential(2)} (relative) from the original, above ${limit}; nothing written`);
    }
    // The last point where stopping leaves no trace: past it the write runs to completion.
    if (hooks.cancelled()) return { cancelled: true };
    const target = job.inPlace ? job.path : defaultOutputPath(job.path, opened.format.extensions[0]);
    hooks.progress({ percent: 80, message: `writing ${target}` });
    const written = opened.format.write(opened.checkpoint, changed, target, { backup: job.inPlace });
    if (job.inPlace) this.forget();
    hooks.progress({ percent: 88, message: onnx ? 'running both files in onnxruntime' : 'reading the written file back' });
    const reopened = this.open(target, job.options.activation);
    const writtenVerification = onnx ? await runOnnxCheck(job.path, target) : check(opened.network, reopened.network).result;
    if (writtenVerification && writtenVerification.maxRelative > limit) {
      undoWrite(target, written, job.inPlace);
      throw new Error(`${target}: the written file computes outputs that differ by ${writtenVerification.maxRelative.toExponential(2)} (relative) from the original, above ${limit}; ${job.inPlace ? 'the original was restored' : 'it was removed'}`);
    }
    hooks.progress({ percent: 94, message: 'analysing the written file' });
    const started = performance.now();
    const analysis = analyzeNetwork(target, reopened, compileFor(target, reopened.network, job.options.p), job.options, started);
    return {
      cancelled: false,
      output: target,
      written,
      solve: { ...predictionOf(r), maxRelativeDeficitBefore: r.maxRelativeDeficitBefore },
      verification,
      writtenVerification,
      verificationSkipped: skipped,
      analysis,
      device: problem.compute?.device ?? 'cpu',
    };
  }
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

/** The engine's forward-pass comparison, or why it could not run (an operator it has no forward pass for). */
function check(a: Network, b: Network): { result?: FunctionCheck; skipped?: string } {
  try {
    const c = compareFunctions(a, b);
    return { result: { maxAbsolute: c.maxAbsolute, maxRelative: c.maxRelative, samples: c.samples } };
  } catch (e) {
    return { skipped: (e as Error).message };
  }
}

async function runOnnxCheck(original: string, written: string): Promise<FunctionCheck> {
  const v = await verifyOnnx(original, written, 1);
  return { maxAbsolute: v.maxAbsolute, maxRelative: v.maxRelative, samples: v.samples };
}

function undoWrite(target: string, written: string[], inPlace: boolean): void {
  if (inPlace) {
    if (existsSync(`${target}.bak`)) renameSync(`${target}.bak`, target);
    return;
  }
  for (const f of written) rmSync(f, { force: true });
}
