// State dicts without a graph: topologies from manifests and from naming conventions.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import type { Checkpoint } from '../../server/src/formats/core/checkpoint';
import { stateDictToNetwork } from '../../server/src/formats/stateDict/build';
import { comparePaths, proposeTopology } from '../../server/src/formats/stateDict/conventions';
import { parseManifest } from '../../server/src/formats/stateDict/manifest';
import { topologyToNetwork } from '../../server/src/formats/stateDict/layerSpec';
import { randomTensor } from '../../server/src/examples/networks';
import { normal, rng } from '../../server/src/engine/random';
import { scratchDir } from '../support/scratch';

/** An in-memory checkpoint of named random tensors (the entries carry decoded values). */
function checkpoint(shapes: Record<string, number[]>, path = '/virtual/model.safetensors'): Checkpoint {
  const draw = normal(rng(3));
  return {
    path,
    format: 'test',
    files: [],
    warnings: [],
    tensors: Object.entries(shapes).map(([name, shape]) => {
      const t = randomTensor(name, 'float32', shape, draw);
      return { name, dtype: t.dtype, shape, file: path, offset: 0, byteLength: 0, encoding: 'memory', decoded: t };
    }),
  };
}

const SEQUENTIAL = { '0.weight': [12, 8], '0.bias': [12], '2.weight': [10, 12], '2.bias': [10], '4.weight': [3, 10], '4.bias': [3] };

describe('naming conventions', () => {
  it('order dotted paths naturally', () => {
    assert.deepEqual(['layers.10', 'layers.9', 'layers.1', 'fc2', 'fc10'].sort(comparePaths), ['fc2', 'fc10', 'layers.1', 'layers.9', 'layers.10']);
  });

  it('chain nn.Sequential indices, and never assume an activation', () => {
    const cp = checkpoint(SEQUENTIAL);
    const topo = proposeTopology(cp)!;
    assert.deepEqual(topo.layers.map((l) => l.name), ['0', '2', '4']);
    const rep = analyze(compile(topologyToNetwork(cp, topo), lp(2)));
    assert.equal(rep.balanceable, 0);
    assert.deepEqual(rep.layers.find((l) => l.name === '0')!.reasons, [{ reason: 'activation unknown', units: 12 }]);
    assert.ok(topo.notes.some((n) => /states no activations/.test(n)));
  });

  it('take activations from a setting, or from a pickled module list (Tanh keeps units visible)', () => {
    const cp = checkpoint(SEQUENTIAL);
    const withSetting = analyze(compile(stateDictToNetwork(cp, { defaultActivation: 'relu' }).network, lp(2)));
    assert.equal(withSetting.balanceable, 22);
    const hints = [
      { path: '0', className: 'torch.nn.modules.linear.Linear' },
      { path: '1', className: 'torch.nn.modules.activation.LeakyReLU', attrs: { negative_slope: 0.2 } },
      { path: '2', className: 'torch.nn.modules.linear.Linear' },
      { path: '3', className: 'torch.nn.modules.activation.Tanh' },
      { path: '4', className: 'torch.nn.modules.linear.Linear' },
    ];
    const net = stateDictToNetwork(cp, {}, { modules: hints }).network;
    const g0 = net.groups.find((g) => g.name === '0')!;
    assert.deepEqual(g0.activation, { kind: 'bilu', neg: 0.2, pos: 1, name: 'leaky_relu' });
    const rep = analyze(compile(net, lp(2)));
    assert.equal(rep.layers.find((l) => l.name === '0')!.balanceable, 12);
    assert.match(rep.layers.find((l) => l.name === '2')!.reasons[0].reason, /activation tanh is not positively homogeneous/);
    assert.equal(net.groups.find((g) => g.name === '2')!.activationSource, '3 (Tanh)');
  });

  it('find transformer FFN blocks inside residual streams', () => {
    const shapes: Record<string, number[]> = {};
    for (const i of [0, 1]) {
      Object.assign(shapes, {
        [`encoder.layers.${i}.attn.q.weight`]: [16, 16],
        [`encoder.layers.${i}.norm.weight`]: [16],
        [`encoder.layers.${i}.norm.bias`]: [16],
        [`encoder.layers.${i}.mlp.fc1.weight`]: [64, 16],
        [`encoder.layers.${i}.mlp.fc1.bias`]: [64],
        [`encoder.layers.${i}.mlp.fc2.weight`]: [16, 64],
        [`encoder.layers.${i}.mlp.fc2.bias`]: [16],
      });
    }
    const cp = checkpoint(shapes);
    const built = stateDictToNetwork(cp, { defaultActivation: 'relu' });
    const rep = analyze(compile(built.network, lp(2)));
    const fc1 = rep.layers.filter((l) => /mlp\.fc1$/.test(l.name));
    assert.equal(fc1.length, 2);
    assert.ok(fc1.every((l) => l.balanceable === 64));
    const fc2 = rep.layers.filter((l) => /mlp\.fc2$/.test(l.name));
    assert.ok(fc2.every((l) => l.role === 'output'));
    assert.ok(built.notes.some((n) => /feed-forward block/.test(n)));
  });

  it('attach BatchNorm to the conv before it and flatten into the first linear layer', () => {
    const cp = checkpoint({
      '0.weight': [6, 3, 3, 3], '0.bias': [6],
      '1.weight': [6], '1.bias': [6], '1.running_mean': [6], '1.running_var': [6],
      '4.weight': [8, 6, 3, 3], '4.bias': [8],
      '8.weight': [16, 128], '8.bias': [16], '10.weight': [3, 16], '10.bias': [3],
    });
    const topo = proposeTopology(cp)!;
    assert.deepEqual(topo.layers.map((l) => l.name), ['0', '4', '8', '10']);
    assert.equal(topo.layers[0].batchnorm?.mean, '1.running_mean');
    const net = topologyToNetwork(cp, topo, { defaultActivation: 'relu' });
    assert.equal(net.connections.find((c) => c.tensor === '8.weight')!.source!.inner, 16);
  });
});

describe('manifests', () => {
  it('state layers, activations and where they were learnt', () => {
    const file = '/virtual/model.safetensors.synbal.json';
    const topo = parseManifest(JSON.stringify({ version: 1, layers: [
      { name: 'fc1', kind: 'linear', weight: '0.weight', bias: '0.bias', activation: 'relu' },
      { name: 'fc2', kind: 'linear', weight: '2.weight', bias: '2.bias', activation: 'leaky_relu:0.1' },
      { name: 'out', kind: 'linear', weight: '4.weight', bias: '4.bias' },
    ] }), file);
    const net = topologyToNetwork(checkpoint(SEQUENTIAL), topo);
    assert.equal(net.groups.find((g) => g.name === 'fc1')!.activationSource, `manifest ${file}`);
    assert.equal(analyze(compile(net, lp(2))).balanceable, 22);
  });

  it('is found beside the checkpoint', () => {
    const dir = scratchDir('synbal-manifest-');
    const path = join(dir, 'm.safetensors');
    writeFileSync(`${path}.synbal.json`, JSON.stringify({ version: 1, layers: [{ name: 'a', kind: 'linear', weight: '0.weight', activation: 'relu' }, { name: 'b', kind: 'linear', weight: '2.weight' }] }));
    const built = stateDictToNetwork(checkpoint({ '0.weight': [4, 3], '2.weight': [2, 4] }, path));
    assert.deepEqual(built.network.groups.map((g) => `${g.name}:${g.role}`), ['input:input', 'a:hidden', 'b:output']);
  });

  it('reject bad manifests with the file and the problem', () => {
    const f = '/virtual/x.synbal.json';
    assert.throws(() => parseManifest('{', f), /x.synbal.json: not valid JSON/);
    assert.throws(() => parseManifest('{"version": 2, "layers": []}', f), /"version": 1/);
    assert.throws(() => parseManifest('{"version": 1, "layers": [{"name": "a", "kind": "lstm", "weight": "w"}]}', f), /layer a: "kind" must be/);
    const topo = parseManifest('{"version": 1, "layers": [{"name": "a", "kind": "linear", "weight": "nope"}]}', f);
    assert.throws(() => topologyToNetwork(checkpoint(SEQUENTIAL), topo), /layer a: the checkpoint has no tensor "nope"/);
  });
});
