// TorchScript archives as torch 1.13 writes them (script and trace, nested modules, constants,
// archives re-zipped under another top folder): the tensors of the eager state dict, the layers
// and activations the forward code shows (unknown where it is not straight-line), and balanced
// copies that torch.jit.load runs to the same output. Fixtures: test/fixtures/torchscript/generate.py.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadTensor, type Checkpoint } from '../../server/src/formats/core/checkpoint';
import { pytorchFormat } from '../../server/src/formats/pytorch/index';
import type { Tensor } from '../../server/src/tensor/tensor';
import { scratchDir } from '../support/scratch';

const DIR = join(__dirname, '..', 'fixtures', 'torchscript');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.pt')).sort();
const io = (f: string) => JSON.parse(readFileSync(join(DIR, f.replace(/\.pt$/, '.io.json')), 'utf8')) as { stateDict: Record<string, { shape: number[]; values: number[] }>; input: number[]; inputShape: number[]; output: number[] };
const hasTorch = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function activations(f: string): Record<string, string> {
  const cp = pytorchFormat.open(join(DIR, f));
  const { network } = pytorchFormat.toNetwork!(cp, {});
  const out: Record<string, string> = {};
  for (const g of network.groups) if (g.role === 'hidden') out[g.name] = g.activation ? (g.activation.kind === 'other' ? g.activation.name : (g.activation as { name: string }).name) : 'unknown';
  return out;
}

describe('TorchScript layouts (torch 1.13)', () => {
  it('every archive is found and read, whatever its top folder', () => {
    assert.ok(FILES.length >= 10);
    assert.ok(FILES.includes('renamed_archive.pt') && FILES.includes('renamed_my_model_v2.pt'));
  });

  for (const f of FILES) {
    it(`${f}: the eager state dict's tensors, value for value`, () => {
      const cp = pytorchFormat.open(join(DIR, f));
      assert.equal((cp.structure as { container: string }).container, 'torchscript');
      const sd = io(f).stateDict;
      for (const [name, want] of Object.entries(sd)) {
        const e = cp.tensors.find((t) => t.name === name);
        assert.ok(e, `${name} missing`);
        assert.deepEqual([...e.shape], want.shape, name);
        const got = Array.from(loadTensor(e).data as Float32Array);
        assert.deepEqual(got, Array.from(Float32Array.from(want.values)), name);
      }
      // Beyond the state dict: only TorchScript constants.
      for (const t of cp.tensors) assert.ok(t.name in sd || t.name.startsWith('CONSTANTS.'), t.name);
    });
  }

  it('a traced module\'s tensor constant is read from constants/ as CONSTANTS.c0', () => {
    const cp = pytorchFormat.open(join(DIR, 'constants_trace.pt'));
    const c0 = cp.tensors.find((t) => t.name === 'CONSTANTS.c0')!;
    assert.deepEqual(Array.from(loadTensor(c0).data as Float32Array).map((v) => Math.round(v * 1e4) / 1e4), Array.from({ length: 8 }, (_, i) => Math.round((-1 + (2 * i) / 7) * 1e4) / 1e4));
  });

  it('activations come from the forward code: modules, torch.relu and F.relu calls, nested modules, a tanh named', () => {
    for (const f of ['seq_script.pt', 'seq_trace.pt']) assert.deepEqual(activations(f), { '0': 'relu', '2': 'relu' }, f);
    for (const f of ['func_script.pt', 'func_trace.pt', 'renamed_archive.pt', 'renamed_my_model_v2.pt']) assert.deepEqual(activations(f), { fc1: 'relu', fc2: 'relu' }, f);
    for (const f of ['nested_script.pt', 'nested_trace.pt']) assert.deepEqual(activations(f), { 'a.lin': 'relu', 'b.lin': 'tanh' }, f);
    assert.deepEqual(activations('constants_trace.pt'), { fc1: 'relu' });
  });

  it('forward code with control flow states no activation: unknown, never assumed', () => {
    assert.deepEqual(activations('constants_script.pt'), { fc1: 'unknown', fc2: 'unknown' });
  });
});

/** Hidden unit 0 of `layer` scaled by `s`, its outgoing weights by 1/s (ReLU: same function). */
function rescaled(cp: Checkpoint, layer: string, next: string, s: number): Map<string, Tensor> {
  const get = (n: string) => loadTensor(cp.tensors.find((t) => t.name === n)!);
  const w = get(`${layer}.weight`);
  const b = get(`${layer}.bias`);
  const w2 = get(`${next}.weight`);
  const wd = w.data.slice();
  const bd = b.data.slice();
  const w2d = w2.data.slice();
  for (let i = 0; i < w.shape[1]; i++) wd[i] *= s;
  bd[0] *= s;
  for (let o = 0; o < w2.shape[0]; o++) w2d[o * w2.shape[1]] /= s;
  return new Map([[w.name, { ...w, data: wd }], [b.name, { ...b, data: bd }], [w2.name, { ...w2, data: w2d }]]);
}

describe('TorchScript balanced copies run in torch', { skip: hasTorch ? false : 'no /usr/bin/python3 with torch' }, () => {
  for (const [f, layer, next] of [['seq_script.pt', '0', '2'], ['func_trace.pt', 'fc1', 'fc2'], ['renamed_my_model_v2.pt', 'fc2', 'fc3'], ['nested_script.pt', 'a.lin', 'b.lin']] as const) {
    it(`${f}: a rescaled unit written back loads with torch.jit.load and gives the same output (1e-5)`, () => {
      const cp = pytorchFormat.open(join(DIR, f));
      const target = join(scratchDir('synbal-ts-'), f);
      pytorchFormat.write(cp, rescaled(cp, layer, next, 4), target);
      assert.ok(existsSync(target));
      const ref = io(f);
      const script = `
import json, sys, torch
m = torch.jit.load(sys.argv[1])
x = torch.tensor(json.loads(sys.argv[2])).reshape(json.loads(sys.argv[3]))
w = dict(m.named_parameters())[sys.argv[4] + '.weight']
print(json.dumps({'y': m(x).flatten().tolist(), 'w0': w[0, 0].item()}))`;
      const r = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, target, JSON.stringify(ref.input), JSON.stringify(ref.inputShape), layer]).toString()) as { y: number[]; w0: number };
      assert.ok(Math.abs(r.w0 - 4 * ref.stateDict[`${layer}.weight`].values[0]) < 1e-5, 'the copy carries the rescaled weight');
      const diff = Math.max(...r.y.map((v, i) => Math.abs(v - ref.output[i])));
      assert.ok(diff < 1e-5, `max |Δ| ${diff}`);
    });
  }
});
