// Compute backends compared end to end on one large MLP: the cost blocks loaded (uploaded),
// the red-black solve, and the balanced weights written, per backend, each in a fresh process
// (its own peak memory, no warm caches from another backend). The 1B-parameter MLP (4 GB of
// float32) runs only with --big, and only where the free memory allows.
import { spawnSync } from 'node:child_process';
import { freemem } from 'node:os';
import { BACKEND_NAMES, type BackendName, type ComputeBackend } from '../compute/backend';
import { cpuBackend } from '../compute/cpuBackend';
import { disposeBackends, startBackend } from '../compute/select';
import { scaledTensors } from '../engine/applyScales';
import { balance } from '../engine/balance';
import { compile } from '../engine/compile';
import { parameterCount, type Network } from '../engine/network';
import { lp } from '../engine/regularizer';
import { mlp } from '../examples/networks';
import { SEED } from './cases';
import { TOLERANCE } from './targets';
import { median, settle } from './timing';

export const BACKEND_CHILD_FLAG = '--backend-one';

interface BigCase {
  name: string;
  sizes: number[];
  runs: number;
}

export const BACKEND_CASES: readonly BigCase[] = [
  { name: 'mlp-70m', sizes: [784, 4096, 4096, 4096, 4096, 4096, 10], runs: 3 },
  { name: 'mlp-1b', sizes: [1024, 18000, 18000, 18000, 18000, 10], runs: 1 },
];

export interface BackendRow {
  model: string;
  params: number;
  backend: BackendName;
  device: string;
  description: string;
  /** Starting the backend (Python and torch, an onnxruntime thread): once per session, not per run. */
  startMs: number;
  /** compile (costs loaded on the device) + solve + scaled weights, per run. */
  times: number[];
  medianMs: number;
  iterations: number;
  maxRelativeDeficitAfter: number;
  peakRssBytes: number;
}

/** The python used for torch rows: SYNBAL_BENCH_PYTHON, else the first of python3 and Debian's /usr/bin/python3 that has torch. */
function benchPython(): string {
  if (process.env.SYNBAL_BENCH_PYTHON) return process.env.SYNBAL_BENCH_PYTHON;
  for (const py of ['python3', '/usr/bin/python3']) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 }).status === 0) return py;
  }
  return 'python3';
}

/** Bytes a backend needs besides the network itself (float32 weights W): a rough bound for the memory check. */
function extraBytes(backend: BackendName, weightBytes: number): number {
  switch (backend) {
    case 'cpu':
      return weightBytes * 0.2;
    case 'torch':
      // The upload file (shared memory), the weights in torch, their float64 costs.
      return weightBytes * 4;
    default:
      return weightBytes * 4;
  }
}

/** A GPU where the backend can use one, else its CPU mode (onnxruntime's `auto` means CUDA only). */
function startBest(backend: BackendName): ComputeBackend {
  if (backend !== 'onnxruntime') return startBackend(backend, 'auto', benchPython());
  try {
    return startBackend(backend, 'cuda');
  } catch {
    return startBackend(backend, 'cpu');
  }
}

function endToEnd(net: Network, backend: ComputeBackend): { ms: number; iterations: number; deficit: number } {
  settle();
  const t0 = performance.now();
  const problem = compile(net, lp(2), backend);
  const r = balance(problem, { tolerance: TOLERANCE });
  // In place: what `synbal balance` does when it need not keep the original weights.
  scaledTensors(problem, r.x, { inPlace: true });
  return { ms: performance.now() - t0, iterations: r.iterations, deficit: r.maxRelativeDeficitAfter };
}

/** One backend on one model, in this process (the child side). */
export function measureBackend(model: string, backend: BackendName): BackendRow {
  const c = BACKEND_CASES.find((k) => k.name === model);
  if (!c) throw new Error(`no backend bench model "${model}"`);
  const t0 = performance.now();
  const be = backend === 'cpu' ? cpuBackend : startBest(backend);
  const startMs = performance.now() - t0;
  const times: number[] = [];
  let last = { ms: 0, iterations: 0, deficit: 0 };
  let params = 0;
  for (let k = 0; k < c.runs; k++) {
    // A fresh copy each run: scaling is in place.
    const net = mlp({ name: c.name, sizes: c.sizes, seed: SEED, dtype: 'float32' });
    params = parameterCount(net);
    last = endToEnd(net, be);
    times.push(last.ms);
    process.stderr.write(`  [${model} ${backend}] run ${k + 1}: ${last.ms.toFixed(0)} ms, ${last.iterations} iterations\n`);
  }
  const row: BackendRow = {
    model,
    params,
    backend,
    device: be.device,
    description: be.description,
    startMs,
    times,
    medianMs: median(times),
    iterations: last.iterations,
    maxRelativeDeficitAfter: last.deficit,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  disposeBackends();
  return row;
}

export interface BackendBench {
  rows: BackendRow[];
  skipped: string[];
}

/** Every backend that starts here on the 70M MLP (and the 1B one with `big`), each in a fresh process. */
export function runBackendBench(big: boolean): BackendBench {
  const rows: BackendRow[] = [];
  const skipped: string[] = [];
  for (const c of BACKEND_CASES) {
    const weightBytes = sizesParams(c.sizes) * 4;
    if (c.name === 'mlp-1b' && !big) {
      skipped.push(`${c.name}: run with --big (needs about ${(weightBytes / 2 ** 30).toFixed(1)} GiB for the weights alone)`);
      continue;
    }
    for (const backend of BACKEND_NAMES) {
      const need = weightBytes + extraBytes(backend, weightBytes);
      if (need > freemem()) {
        skipped.push(`${c.name} ${backend}: needs about ${(need / 2 ** 30).toFixed(1)} GiB, ${(freemem() / 2 ** 30).toFixed(1)} GiB free`);
        continue;
      }
      process.stderr.write(`backend ${backend} on ${c.name} in a fresh process…\n`);
      const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1], BACKEND_CHILD_FLAG, c.name, backend], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 2 ** 24 });
      process.stderr.write(child.stderr);
      const last = child.stdout.trim().split('\n').pop() ?? '';
      if (child.status !== 0) {
        const why = child.stderr.split('\n').find((l) => l.startsWith('cannot run: ')) ?? `exit code ${child.status}`;
        skipped.push(`${c.name} ${backend}: ${why.replace(/^cannot run: /, '')}`);
        continue;
      }
      rows.push(JSON.parse(last) as BackendRow);
    }
  }
  return { rows, skipped };
}

function sizesParams(sizes: number[]): number {
  let n = 0;
  for (let l = 1; l < sizes.length; l++) n += sizes[l] * (sizes[l - 1] + 1);
  return n;
}

export function renderBackends(b: BackendBench): string {
  const lines = ['| model | backend | device | start (once) | end-to-end median | runs | vs cpu | iterations | peak RSS |', '|---|---|---|---|---|---|---|---|---|'];
  for (const r of b.rows) {
    const cpu = b.rows.find((k) => k.model === r.model && k.backend === 'cpu');
    const ratio = cpu ? `${(cpu.medianMs / r.medianMs).toFixed(2)}×` : '—';
    lines.push(`| ${r.model} (${(r.params / 1e6).toFixed(0)} M) | ${r.backend} | ${r.device} | ${(r.startMs / 1000).toFixed(2)} s | ${(r.medianMs / 1000).toFixed(2)} s | ${r.times.length} | ${ratio} | ${r.iterations} | ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB |`);
  }
  for (const s of b.skipped) lines.push('', `skipped: ${s}`);
  lines.push('', 'End to end: costs loaded (uploaded to the device), red-black solve to 1e-7, balanced weights written; "vs cpu" is cpu time / this time (above 1: faster).');
  return lines.join('\n');
}
