// Choosing and starting a compute backend for a device setting, and keeping started ones for
// later requests (a torch process takes a second or two to start; it then stays up).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Problem } from '../engine/compile';
import { BackendUnavailable, type BackendName, type ComputeBackend, type DeviceSetting } from './backend';
import { BridgedBackend } from './bridgedBackend';
import { cpuBackend } from './cpuBackend';
import { gpuHint } from './gpuProbe';
import { SyncBridge } from './syncBridge';
import { loadTfjs, TfjsBackend } from './tfjsBackend';

import { AUTO_DEVICE_MIN_ELEMENTS } from './threshold';

export { AUTO_DEVICE_MIN_ELEMENTS };

/**
 * Scale the weights on the torch device (SYNBAL_DEVICE_SCALE=1) instead of on the CPU. Off by
 * default: the weights live in this process, so the device must send every scaled weight back
 * through a file; on the 70M MLP that took 3.3 s against 0.25 s for the CPU's one pass.
 */
const DEVICE_SCALE = process.env.SYNBAL_DEVICE_SCALE === '1';

/** A worker that has not said hello by then is reported as failing to start. */
const START_TIMEOUT_MS = 60_000;

export interface ComputeOptions {
  device: DeviceSetting;
  /** The interpreter for the torch backend; empty: `python3`. */
  python?: string;
  /** Force one backend (tests, the bench, `--backend`); default: chosen from the device. */
  backend?: BackendName;
}

export interface Selection {
  backend: ComputeBackend;
  /** One line for the user when `auto` fell back to the CPU (why no GPU backend started). */
  note?: string;
}

export function pythonOf(opts: Pick<ComputeOptions, 'python'>): string {
  return opts.python?.trim() || 'python3';
}

/** The shipped worker script: server/compute/torch_worker.py, from the bundle (dist/) or the sources. */
export function torchWorkerScript(): string {
  const candidates = [join(__dirname, '..', 'server', 'compute', 'torch_worker.py'), join(__dirname, '..', '..', 'compute', 'torch_worker.py')];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new BackendUnavailable('torch', `the worker script is missing (looked for ${candidates.join(', ')})`);
  return found;
}

const started = new Map<string, ComputeBackend>();
/** Why a backend would not start, so that `auto` does not retry it on every request. */
const failed = new Map<string, string>();

function keyOf(name: BackendName, device: string, python: string): string {
  return `${name}\0${device}\0${name === 'torch' ? python : ''}`;
}

function create(name: BackendName, device: string, python: string): ComputeBackend {
  switch (name) {
    case 'cpu':
      if (device !== 'cpu' && device !== 'auto') throw new BackendUnavailable('cpu', `it cannot run on ${device}`);
      return cpuBackend;
    case 'torch': {
      const bridge = new SyncBridge(`torch worker (${python}, device ${device})`, { kind: 'torch', python, device, script: torchWorkerScript() });
      try {
        return new BridgedBackend('torch', bridge, bridge.start(START_TIMEOUT_MS), DEVICE_SCALE);
      } catch (e) {
        bridge.close();
        throw e;
      }
    }
    case 'onnxruntime': {
      const bridge = new SyncBridge(`onnxruntime (${device})`, { kind: 'onnxruntime', device: device === 'auto' ? 'cuda' : device });
      try {
        return new BridgedBackend('onnxruntime', bridge, bridge.start(START_TIMEOUT_MS), false);
      } catch (e) {
        bridge.close();
        throw e;
      }
    }
    case 'tfjs': {
      const { tf, pkg } = loadTfjs();
      const b = new TfjsBackend(tf, pkg);
      if (device !== 'auto' && b.device !== device) throw new BackendUnavailable('tfjs', `${pkg} runs on ${b.device}, not ${device}`);
      return b;
    }
  }
}

/** A started backend (reused when one with the same name, device and interpreter is alive). */
export function startBackend(name: BackendName, device: string, python = 'python3'): ComputeBackend {
  const key = keyOf(name, device, python);
  const known = started.get(key);
  if (known && !(known instanceof BridgedBackend && !known.alive)) return known;
  // A worker stopped by a cancellation: free what is left of it (its scratch folder).
  known?.dispose();
  started.delete(key);
  const b = create(name, device, python);
  if (name !== 'cpu') started.set(key, b);
  return b;
}

/** The GPU backends `auto` tries, fastest first. */
const GPU_CANDIDATES: readonly { name: BackendName; device: string }[] = [
  { name: 'torch', device: 'auto' },
  { name: 'onnxruntime', device: 'cuda' },
  { name: 'tfjs', device: 'cuda' },
];

function tryStart(name: BackendName, device: string, python: string, reasons: string[], gpuOnly: boolean): ComputeBackend | undefined {
  const key = keyOf(name, device, python);
  // Only `auto` remembers failures (it asks on every large fix); a device the user names is
  // tried again each time, so installing torch or the CUDA provider takes effect without a restart.
  const before = gpuOnly ? failed.get(key) : undefined;
  if (before) {
    reasons.push(before);
    return undefined;
  }
  try {
    const b = startBackend(name, device, python);
    if (gpuOnly && b.device === 'cpu') {
      // torch with device auto settles on the CPU when it sees no GPU: not what auto is after.
      reasons.push(`${b.description} sees no GPU`);
      failed.set(key, `${name}: no GPU`);
      b.dispose();
      started.delete(key);
      return undefined;
    }
    return b;
  } catch (e) {
    const why = (e as Error).message;
    if (gpuOnly) failed.set(key, why);
    reasons.push(why);
    return undefined;
  }
}

/**
 * The backend for these options and a problem of `elements` cost elements. An explicit
 * backend or GPU device that cannot start is an error; `auto` falls back to the CPU with a note.
 */
export function selectBackend(opts: ComputeOptions, elements: number): Selection {
  const python = pythonOf(opts);
  if (opts.backend) return { backend: startBackend(opts.backend, opts.device, python) };
  if (opts.device === 'cpu') return { backend: cpuBackend };
  if (opts.device === 'cuda' || opts.device === 'mps') {
    const reasons: string[] = [];
    const candidates = opts.device === 'mps' ? [{ name: 'torch' as const, device: 'mps' }] : GPU_CANDIDATES.map((c) => ({ ...c, device: 'cuda' }));
    for (const c of candidates) {
      const b = tryStart(c.name, c.device, python, reasons, false);
      if (b) return { backend: b };
    }
    throw new Error(`device ${opts.device}: no backend could use it (${reasons.join('; ')})`);
  }
  if (elements < AUTO_DEVICE_MIN_ELEMENTS) return { backend: cpuBackend };
  const hint = gpuHint();
  if (!hint.found) return { backend: cpuBackend, note: `device auto: no GPU found (${hint.detail}); using the CPU` };
  const reasons: string[] = [];
  for (const c of GPU_CANDIDATES) {
    const b = tryStart(c.name, c.device, python, reasons, true);
    if (b) return { backend: b };
  }
  return { backend: cpuBackend, note: `device auto: no GPU backend started (${reasons.join('; ')}); using the CPU` };
}

/**
 * Runs this problem's products and final scaling on `backend`, its cost blocks made resident
 * now. Sums of powers (no single p) stay on the CPU: their costs are not a fixed matrix.
 */
export function attachCompute(problem: Problem, backend: ComputeBackend): ComputeBackend {
  if (problem.regularizer.power === undefined || backend === cpuBackend) {
    problem.compute = cpuBackend;
    return cpuBackend;
  }
  backend.load(problem.blocks.flatMap((b) => (b.cost ? [b.cost] : [])));
  problem.compute = backend;
  return backend;
}

/** Stops every started backend (their worker processes included). */
export function disposeBackends(): void {
  for (const b of started.values()) b.dispose();
  started.clear();
  failed.clear();
}

// A process that ends leaves no worker behind. No waiting here (an exit handler cannot): the
// processes are killed outright, and the Python side also exits when its stdin closes.
process.once('exit', () => {
  for (const b of started.values()) {
    if (!(b instanceof BridgedBackend)) continue;
    b.abandon();
  }
});
