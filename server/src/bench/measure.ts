// Every measurement of one network, meant to run alone in a fresh process so that its peak
// RSS belongs to that network only.
import { cpuBackend } from '../compute/cpuBackend';
import { balance } from '../engine/balance';
import { compile } from '../engine/compile';
import { unitStats } from '../engine/evaluate';
import { parameterCount, type Network } from '../engine/network';
import { lp } from '../engine/regularizer';
import { DTYPE_BYTES } from '../tensor/dtype';
import type { BenchCase } from './cases';
import { SEED } from './cases';
import { runPaperSchedule, type PaperResult } from './paper';
import { TOLERANCE } from './targets';
import { timeOnce, timeRuns } from './timing';

export const PAPER_MAX_STEPS = 1_000_000;

export interface NetworkResult {
  name: string;
  label: string;
  layerChain: boolean;
  paperTarget: boolean;
  params: number;
  weightBytes: number;
  nVars: number;
  buildMs: number;
  compileMs: number;
  pass: { medianMs: number; times: number[] };
  solve: {
    medianMs: number;
    times: number[];
    method: string;
    iterations: number;
    converged: boolean;
    passes: number;
    deficitBefore: number;
    deficitAfter: number;
  };
  paper: PaperResult;
  /** process.resourceUsage().maxRSS at the end of the process, in bytes. */
  peakRssBytes: number;
}

function weightBytes(net: Network): number {
  return net.tensors.reduce((s, t) => s + t.data.length * DTYPE_BYTES[t.dtype], 0);
}

function log(name: string, text: string): void {
  process.stderr.write(`  [${name}] ${text}\n`);
}

export function measureCase(c: BenchCase): NetworkResult {
  const built = timeOnce(() => c.build());
  const net = built.result;
  const compiled = timeOnce(() => compile(net, lp(2), cpuBackend));
  const problem = compiled.result;
  log(c.name, `${net.name}: built in ${built.ms.toFixed(0)} ms, compiled in ${compiled.ms.toFixed(0)} ms`);

  // Away from the identity, where unitStats would answer from sums cached at compile time.
  const off = new Float64Array(problem.nVars).fill(1e-3);
  const pass = timeRuns(() => unitStats(problem, off), { warmupMs: 200, minRuns: 5, minTotalMs: 1000, maxRuns: 200 });
  log(c.name, `pass ${pass.medianMs.toFixed(2)} ms (median of ${pass.times.length})`);

  const solve = timeRuns(() => balance(problem, { method: 'optimal', tolerance: TOLERANCE }), { warmupMs: 500, minRuns: 3, minTotalMs: 2000, maxRuns: 30 });
  const s = solve.result;
  log(c.name, `solve ${solve.medianMs.toFixed(1)} ms (median of ${solve.times.length}), ${s.method}, ${s.iterations} iterations`);

  const paper = runPaperSchedule(problem, { tolerance: TOLERANCE, seed: SEED, budgetMs: c.paperBudgetMs, maxSteps: PAPER_MAX_STEPS, maxRuns: 3 });
  log(c.name, `paper schedule ${paper.ms.toFixed(0)} ms, ${paper.steps} steps, ${paper.converged ? 'converged' : `capped (${paper.cap})`}`);

  return {
    name: c.name,
    label: net.name,
    layerChain: c.layerChain,
    paperTarget: c.paperTarget,
    params: parameterCount(net),
    weightBytes: weightBytes(net),
    nVars: problem.nVars,
    buildMs: built.ms,
    compileMs: compiled.ms,
    pass: { medianMs: pass.medianMs, times: pass.times },
    solve: {
      medianMs: solve.medianMs,
      times: solve.times,
      method: s.method,
      iterations: s.iterations,
      converged: s.converged,
      passes: s.passes,
      deficitBefore: s.maxRelativeDeficitBefore,
      deficitAfter: s.maxRelativeDeficitAfter,
    },
    paper,
    // maxRSS is in kilobytes; read last, so that it covers every step above.
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}
