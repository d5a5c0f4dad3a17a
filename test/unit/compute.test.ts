// Compute backends: every backend that runs here gives the CPU's Λ and balanced weights; the
// torch worker's errors, cancellation and reuse; tfjs reported cleanly as not installed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BackendUnavailable, ComputeCancelled, type BackendName, type ComputeBackend } from '../../server/src/compute/backend';
import type { BridgedBackend } from '../../server/src/compute/bridgedBackend';
import { cpuBackend } from '../../server/src/compute/cpuBackend';
import { AUTO_DEVICE_MIN_ELEMENTS, disposeBackends, selectBackend, startBackend } from '../../server/src/compute/select';
import { ASSUME_GPU_ENV, gpuHint } from '../../server/src/compute/gpuProbe';
import { loadTfjs } from '../../server/src/compute/tfjsBackend';
import { scaledTensors, unitScales } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import type { Network } from '../../server/src/engine/network';
import { lp, type Regularizer } from '../../server/src/engine/regularizer';
import { mlp } from '../../server/src/examples/networks';
import { openNetworkFile } from '../../server/src/app/openNetwork';
import { tensorValues } from '../../server/src/tensor/tensor';
import { SHAPES, maxRelDiff } from './helpers';
import { scratchDir } from '../support/scratch';

const PYTHON = '/usr/bin/python3';
const torchHere = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
const NO_TORCH = `${PYTHON} with torch is not available here`;

after(() => disposeBackends());

/** A float32 MLP whose middle layers are large enough (≥ 2^20 weights) to be costed from the weights themselves on the device. */
function wideMlp(seed: number): Network {
  return mlp({ name: 'wide', sizes: [40, 1100, 1000, 8], seed, std: 0.05, dtype: 'float32' });
}

/** The same network with one weight stored [source][target] (as Keras and ONNX MatMul store it). */
function transposedMlp(seed: number): Network {
  const net = wideMlp(seed);
  const c = net.connections.find((k) => k.kind === 'dense' && k.tensor === 'fc2.weight')!;
  const t = net.tensors.find((k) => k.name === c.tensor)!;
  const [rows, cols] = t.shape;
  const data = new Float32Array(t.data.length);
  for (let a = 0; a < rows; a++) for (let b = 0; b < cols; b++) data[b * rows + a] = t.data[a * cols + b];
  return {
    ...net,
    tensors: net.tensors.map((k) => (k === t ? { ...t, shape: [cols, rows], data } : k)),
    connections: net.connections.map((k) => (k === c ? { ...c, target: { axis: 1 }, source: { axis: 0 } } : k)),
  };
}

interface Solved {
  lambda: Float64Array;
  weights: Map<string, Float64Array>;
  R: number;
}

function solve(net: Network, reg: Regularizer, backend: ComputeBackend): Solved {
  const problem = compile(net, reg, backend);
  const r = balance(problem, { tolerance: 1e-10, maxIterations: 2000 });
  const changed = scaledTensors(problem, r.x);
  return { lambda: unitScales(problem, r.x), weights: new Map([...changed].map(([k, t]) => [k, Float64Array.from(tensorValues(t))])), R: r.RAfter };
}

function assertAgrees(a: Solved, b: Solved, what: string): void {
  assert.ok(maxRelDiff(a.lambda, b.lambda) < 1e-6, `${what}: Λ differs by ${maxRelDiff(a.lambda, b.lambda)}`);
  assert.deepEqual([...a.weights.keys()].sort(), [...b.weights.keys()].sort(), `${what}: the same tensors change`);
  for (const [k, w] of a.weights) {
    const d = maxRelDiff(w, b.weights.get(k)!, 1e-9);
    assert.ok(d < 1e-6, `${what}: ${k} differs by ${d}`);
  }
  assert.ok(Math.abs(a.R - b.R) <= 1e-6 * Math.abs(b.R), `${what}: R ${a.R} vs ${b.R}`);
}

const DEVICE_BACKENDS: { name: BackendName; skip: string | false; start: () => ComputeBackend }[] = [
  { name: 'torch', skip: torchHere ? false : NO_TORCH, start: () => startBackend('torch', 'cpu', PYTHON) },
  { name: 'onnxruntime', skip: false, start: () => startBackend('onnxruntime', 'cpu') },
];

for (const { name, skip, start } of DEVICE_BACKENDS) {
  describe(`the ${name} backend agrees with the cpu backend`, { skip }, () => {
    for (const shape of SHAPES) {
      for (const reg of [lp(2), lp(1), lp(3)]) {
        it(`${shape.name}, ${reg.label}`, () => {
          const net = shape.build(5);
          assertAgrees(solve(net, reg, start()), solve(net, reg, cpuBackend), `${shape.name} ${reg.label}`);
        });
      }
    }

    it('a float32 MLP with 1.1 M-weight layers (costs from the weights on the device, scaled there)', () => {
      assertAgrees(solve(wideMlp(2), lp(2), start()), solve(wideMlp(2), lp(2), cpuBackend), 'wide L2');
      assertAgrees(solve(wideMlp(3), lp(1), start()), solve(wideMlp(3), lp(1), cpuBackend), 'wide L1');
    });

    it('a layer stored [source][target]', () => {
      assertAgrees(solve(transposedMlp(4), lp(2), start()), solve(transposedMlp(4), lp(2), cpuBackend), 'transposed');
    });

    it('a real model: server/examples/cnn_bn.onnx (conv channels, BatchNorm)', () => {
      const open = () => openNetworkFile('server/examples/cnn_bn.onnx', {}).network;
      assertAgrees(solve(open(), lp(2), start()), solve(open(), lp(2), cpuBackend), 'cnn_bn.onnx');
    });
  });
}

describe('the torch worker process', { skip: torchHere ? false : NO_TORCH }, () => {
  it('is started once and reused between requests and problems', () => {
    const a = startBackend('torch', 'cpu', PYTHON) as BridgedBackend;
    solve(wideMlp(6), lp(2), a);
    const b = startBackend('torch', 'cpu', PYTHON) as BridgedBackend;
    assert.equal(b, a);
    solve(mlp({ sizes: [6, 9, 4], seed: 1 }), lp(2), b);
    assert.equal(b.pid, a.pid);
    assert.ok(b.pid && processAlive(b.pid));
  });

  it('reports a Python exception with its type and message, and stays usable', () => {
    const b = startBackend('torch', 'cpu', PYTHON) as BridgedBackend;
    assert.throws(() => b.wait('soon' as unknown as number), /torch worker \(\/usr\/bin\/python3, device cpu\): ValueError: could not convert string to float: 'soon' \(torch_worker\.py:\d+\)/);
    b.wait(0);
    assert.ok(b.alive);
  });

  it('says so when CUDA or MPS is not there (torch on the CPU only here)', { skip: hasTorchGpu() ? 'a GPU is present' : false }, () => {
    assert.throws(() => startBackend('torch', 'cuda', PYTHON), /CUDA is not available to torch/);
    assert.throws(() => startBackend('torch', 'mps', PYTHON), /MPS is not available to torch/);
  });

  it('is killed, and reaped, when a request is cancelled', () => {
    const b = startBackend('torch', 'cpu', PYTHON) as BridgedBackend;
    const pid = b.pid!;
    const t0 = Date.now();
    b.setCancel(() => Date.now() - t0 > 200);
    assert.throws(() => b.wait(30), ComputeCancelled);
    assert.ok(Date.now() - t0 < 5000, 'cancelled within seconds, not after the 30 s wait');
    // A zombie still answers kill(pid, 0); a reaped process does not.
    assert.equal(processAlive(pid), false);
    assert.equal(b.alive, false);
    assert.throws(() => b.wait(0), /stopped/);
    // The next request starts a fresh worker.
    const c = startBackend('torch', 'cpu', PYTHON) as BridgedBackend;
    assert.notEqual(c.pid, pid);
    c.wait(0);
  });
});

describe('backends that cannot start', () => {
  it('a missing interpreter is named', () => {
    assert.throws(() => startBackend('torch', 'cpu', '/no/such/python3'), /Python interpreter "\/no\/such\/python3" not found/);
  });

  it('an interpreter without torch is named', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, () => {
    const dir = scratchDir('synbal-py-');
    try {
      // The same Python without its site packages: no torch to import.
      const shim = join(dir, 'python-without-torch');
      writeFileSync(shim, `#!/bin/sh\nexec ${PYTHON} -S "$@"\n`);
      chmodSync(shim, 0o755);
      assert.throws(() => startBackend('torch', 'cpu', shim), /torch is not installed for .*No module named/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tfjs reports "not installed" for both bindings, without throwing anything else', () => {
    assert.throws(loadTfjs, (e: unknown) => e instanceof BackendUnavailable && /@tensorflow\/tfjs-node-gpu not installed; @tensorflow\/tfjs-node not installed/.test((e as Error).message));
    assert.throws(() => startBackend('tfjs', 'auto'), /tfjs backend: .*not installed/);
  });

  it("onnxruntime's CUDA provider is reported missing when the package lacks it", () => {
    assert.throws(() => startBackend('onnxruntime', 'cuda'), /CUDA execution provider is not installed|no CUDA execution provider/);
  });
});

describe('device selection', () => {
  it('auto keeps small models on the CPU without starting anything', () => {
    const sel = selectBackend({ device: 'auto', python: '/no/such/python3' }, AUTO_DEVICE_MIN_ELEMENTS - 1);
    assert.equal(sel.backend, cpuBackend);
    assert.equal(sel.note, undefined);
  });

  it('auto falls back to the CPU with a one-line note when no GPU backend starts', { skip: hasTorchGpu() ? 'a GPU is present' : false }, () => {
    // Past the device-node probe (as in a container that hides them), every GPU backend is tried.
    process.env[ASSUME_GPU_ENV] = '1';
    try {
      const sel = selectBackend({ device: 'auto', python: torchHere ? PYTHON : '/no/such/python3' }, AUTO_DEVICE_MIN_ELEMENTS);
      assert.equal(sel.backend, cpuBackend);
      assert.match(sel.note!, /^device auto: no GPU backend started \(.*torch.*; .*onnxruntime.*; .*tfjs.*\); using the CPU$/);
      assert.doesNotMatch(sel.note!, /\n/);
    } finally {
      delete process.env[ASSUME_GPU_ENV];
    }
  });

  it('auto starts no Python where no GPU device exists, and says what it looked for', { skip: gpuHint().found ? 'this machine has a GPU device node' : false }, () => {
    const sel = selectBackend({ device: 'auto', python: '/no/such/python3' }, AUTO_DEVICE_MIN_ELEMENTS);
    assert.equal(sel.backend, cpuBackend);
    assert.match(sel.note!, /^device auto: no GPU found \(none of \/dev\/nvidiactl, .*\); using the CPU$/);
  });

  it('the GPU probe reads device nodes and the platform', () => {
    assert.deepEqual(gpuHint((p) => p === '/dev/nvidiactl', 'linux', 'x64'), { found: true, detail: '/dev/nvidiactl' });
    assert.deepEqual(gpuHint((p) => p === '/dev/kfd', 'linux', 'x64'), { found: true, detail: '/dev/kfd' });
    assert.equal(gpuHint(() => false, 'linux', 'x64').found, false);
    assert.equal(gpuHint(() => false, 'darwin', 'arm64').found, true);
    assert.equal(gpuHint(() => false, 'darwin', 'x64').found, false);
  });

  it('an explicit GPU device that no backend can use is an error naming each backend', { skip: hasTorchGpu() ? 'a GPU is present' : false }, () => {
    assert.throws(() => selectBackend({ device: 'cuda', python: '/no/such/python3' }, 1), /device cuda: no backend could use it \(.*not found.*onnxruntime.*tfjs/);
  });

  it('cpu is the cpu backend', () => {
    assert.equal(selectBackend({ device: 'cpu' }, 1 << 30).backend, cpuBackend);
  });
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function hasTorchGpu(): boolean {
  return torchHere && spawnSync(PYTHON, ['-c', 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'], { stdio: 'ignore' }).status === 0;
}
