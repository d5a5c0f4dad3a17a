// Real state dicts (made by PyTorch 1.13): networks from manifests, module lists and settings,
// checked against PyTorch's own outputs, balanced, written in the same format, re-read.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { applyScales, scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { forward } from '../../server/src/engine/forward';
import type { Network } from '../../server/src/engine/network';
import { lp } from '../../server/src/engine/regularizer';
import { openModel } from '../../server/src/formats/registry';
import { networkOf } from '../../server/src/formats/registry';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');

interface IoCase {
  input: unknown;
  output: unknown;
}

function flat(v: unknown): number[] {
  return Array.isArray(v) ? v.flatMap(flat) : [v as number];
}

/** Engine outputs for the fixture's reference inputs, and PyTorch's outputs for them. */
function againstReference(net: Network, name: string): { ours: number[]; theirs: number[] } {
  const io = JSON.parse(readFileSync(join(MODELS, `${name}.io.json`), 'utf8')) as { cases: IoCase[] };
  const input = net.groups.find((g) => g.role === 'input')!;
  const output = net.groups.find((g) => g.role === 'output')!;
  const ours: number[] = [];
  const theirs: number[] = [];
  for (const c of io.cases) {
    const values = forward(net, new Map([[input.name, [Float64Array.from(flat(c.input))]]]));
    ours.push(...values.get(output.name)![0]);
    theirs.push(...flat(c.output));
  }
  return { ours, theirs };
}

function maxDiff(a: number[], b: number[]): number {
  const scale = Math.max(...b.map(Math.abs));
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]))) / scale;
}

function scratchCopy(...files: string[]): string {
  const dir = scratchDir('synbal-sd-');
  for (const f of files) copyFileSync(join(MODELS, f), join(dir, f));
  return dir;
}

/** Balances the file, writes the copy, re-reads it: returns both networks. */
/** `eps`: the weights' rounding (float32 by default), which bounds what writing them back can keep. */
function roundTrip(path: string, name: string, activation?: string, eps = 6e-8): { before: Network; after: Network; written: string[] } {
  const { format, checkpoint } = openModel(path);
  const before = networkOf(checkpoint, { defaultActivation: activation }).network;
  const problem = compile(before, lp(2));
  assert.ok(problem.nVars > 0, 'something to balance');
  const r = balance(problem);
  assert.ok(r.converged);
  const target = path.replace(/(\.safetensors\.index\.json|\.[a-z]+)$/, '.balanced$1');
  const written = format.write(checkpoint, scaledTensors(problem, r.x), target);
  const again = openModel(target);
  const after = networkOf(again.checkpoint, { defaultActivation: activation }).network;
  // The written network is balanced up to float32 rounding.
  assert.ok(analyze(compile(after, lp(2))).maxRelativeDeficit < 200 * eps);
  // What was written is what the engine balanced (up to the dtype's rounding).
  assert.ok(maxDiff(againstReference(applyScales(problem, r.x), name).ours, againstReference(after, name).ours) < 20 * eps);
  return { before, after, written };
}

const MANIFESTS: Record<string, object> = {
  cnn_bn: {
    version: 1,
    input: { spatial: [8, 8] },
    layers: [
      { name: 'conv1', kind: 'conv', weight: '0.weight', bias: '0.bias', padding: [1, 1], batchnorm: { weight: '1.weight', bias: '1.bias', mean: '1.running_mean', var: '1.running_var' }, activation: 'relu', pool: { kind: 'max', kernel: [2, 2] } },
      { name: 'conv2', kind: 'conv', weight: '4.weight', bias: '4.bias', padding: [1, 1], batchnorm: { weight: '5.weight', bias: '5.bias', mean: '5.running_mean', var: '5.running_var' }, activation: 'relu' },
      { name: 'fc', kind: 'linear', weight: '8.weight', bias: '8.bias', activation: 'relu' },
      { name: 'head', kind: 'linear', weight: '10.weight', bias: '10.bias' },
    ],
  },
  residual: {
    version: 1,
    layers: [
      { name: 'fc_in', kind: 'linear', weight: 'fc_in.weight', bias: 'fc_in.bias', activation: 'relu' },
      { name: 'fc_a', kind: 'linear', weight: 'fc_a.weight', bias: 'fc_a.bias', activation: 'relu' },
      { name: 'fc_b', kind: 'linear', weight: 'fc_b.weight', bias: 'fc_b.bias', residualFrom: 'fc_in', activation: 'relu' },
      { name: 'fc_out', kind: 'linear', weight: 'fc_out.weight', bias: 'fc_out.bias' },
    ],
  },
};

describe('state dicts against PyTorch', () => {
  for (const file of ['mlp_relu.safetensors', 'mlp_relu.pt', 'mlp_relu_legacy.pt']) {
    it(`${file}: --activation relu states the activations; outputs match PyTorch; balanced copy computes the same`, () => {
      const dir = scratchCopy(file);
      const { before, after } = roundTrip(join(dir, file), 'mlp_relu', 'relu');
      const ref = againstReference(before, 'mlp_relu');
      assert.ok(maxDiff(ref.ours, ref.theirs) < 1e-6, `before: ${maxDiff(ref.ours, ref.theirs)}`);
      const bal = againstReference(after, 'mlp_relu');
      assert.ok(maxDiff(bal.ours, bal.theirs) < 1e-5, `after: ${maxDiff(bal.ours, bal.theirs)}`);
    });
  }

  it('a TorchScript Sequential states its own activations', () => {
    const dir = scratchCopy('mlp_relu_script.pt');
    const { after } = roundTrip(join(dir, 'mlp_relu_script.pt'), 'mlp_relu');
    assert.equal(after.groups.find((g) => g.name === '0')!.activationSource, 'forward code: relu after 0 (ReLU)');
    const bal = againstReference(after, 'mlp_relu');
    assert.ok(maxDiff(bal.ours, bal.theirs) < 1e-5);
  });

  for (const [name, file] of [['cnn_bn', 'cnn_bn.safetensors'], ['cnn_bn', 'cnn_bn.pt'], ['residual', 'residual.pt']] as const) {
    it(`${file} with a manifest (${name === 'cnn_bn' ? 'BatchNorm, max-pool, flatten' : 'a residual add'}): outputs match PyTorch before and after`, () => {
      const dir = scratchCopy(file);
      writeFileSync(join(dir, `${file}.synbal.json`), JSON.stringify(MANIFESTS[name]));
      writeFileSync(join(dir, `${file.replace(/\.[a-z]+$/, '.balanced$&')}.synbal.json`), JSON.stringify(MANIFESTS[name]));
      const { before, after } = roundTrip(join(dir, file), name);
      const ref = againstReference(before, name);
      assert.ok(maxDiff(ref.ours, ref.theirs) < 1e-6, `before: ${maxDiff(ref.ours, ref.theirs)}`);
      const bal = againstReference(after, name);
      assert.ok(maxDiff(bal.ours, bal.theirs) < 1e-5, `after: ${maxDiff(bal.ours, bal.theirs)}`);
    });
  }

  it('a sharded safetensors checkpoint is balanced shard by shard', () => {
    const files = ['cnn_bn_sharded-00001-of-00002.safetensors', 'cnn_bn_sharded-00002-of-00002.safetensors', 'cnn_bn_sharded.safetensors.index.json'];
    const dir = scratchCopy(...files);
    writeFileSync(join(dir, 'cnn_bn_sharded.safetensors.synbal.json'), JSON.stringify(MANIFESTS.cnn_bn));
    writeFileSync(join(dir, 'cnn_bn_sharded.balanced.safetensors.synbal.json'), JSON.stringify(MANIFESTS.cnn_bn));
    const { after, written } = roundTrip(join(dir, 'cnn_bn_sharded.safetensors.index.json'), 'cnn_bn');
    assert.deepEqual(written.map((f) => basename(f)).sort(), ['cnn_bn_sharded.balanced-00001-of-00002.safetensors', 'cnn_bn_sharded.balanced-00002-of-00002.safetensors', 'cnn_bn_sharded.balanced.safetensors.index.json']);
    const bal = againstReference(after, 'cnn_bn');
    assert.ok(maxDiff(bal.ours, bal.theirs) < 1e-5);
  });

  for (const [file, tol] of [['mlp_f16.safetensors', 4.9e-4], ['mlp_bf16.safetensors', 3.9e-3]] as const) {
    it(`${file}: half-precision weights are written back in their dtype`, () => {
      const dir = scratchCopy(file);
      const name = file.replace('.safetensors', '');
      const { after } = roundTrip(join(dir, file), name, 'relu', tol);
      assert.ok(after.tensors.every((t) => t.dtype === (name === 'mlp_f16' ? 'float16' : 'bfloat16')));
      const bal = againstReference(after, name);
      assert.ok(maxDiff(bal.ours, bal.theirs) < 20 * tol, `${maxDiff(bal.ours, bal.theirs)}`);
    });
  }
});
