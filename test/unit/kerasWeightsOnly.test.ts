// Keras 2 weights-only files (save_weights layout: layer groups at the root, no model_config;
// test/fixtures/keras/weights_only.h5 is mlp_seq's weights written by h5py, generate.py): read
// as a state dict whose layers a sidecar manifest states; forward pass against the numpy
// reference of the same weights, balance → write → re-open.
import assert from 'node:assert/strict';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { compareFunctions } from '../../server/src/engine/verify';
import { bytesOf, loadTensor } from '../../server/src/formats/core/checkpoint';
import { prepareKeras } from '../../server/src/formats/keras/index';
import { detectFormat, networkOf, openModel } from '../../server/src/formats/registry';
import { engineOutput, fixture, maxRelative, reference } from '../fixtures/keras/helpers';
import { scratchDir } from '../support/scratch';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
before(async () => {
  await prepareKeras();
});

const MANIFEST = {
  version: 1,
  layers: [
    { name: 'dense', kind: 'linear', weight: 'dense/dense/kernel', bias: 'dense/dense/bias', layout: 'in-out', activation: 'relu' },
    { name: 'dense_1', kind: 'linear', weight: 'dense_1/dense_1/kernel', bias: 'dense_1/dense_1/bias', layout: 'in-out', activation: 'leaky_relu:0.2' },
    { name: 'dense_2', kind: 'linear', weight: 'dense_2/dense_2/kernel', bias: 'dense_2/dense_2/bias', layout: 'in-out' },
  ],
};

function copy(): string {
  const dir = scratchDir('synbal-keras-weights-');
  dirs.push(dir);
  const path = join(dir, 'weights_only.h5');
  copyFileSync(fixture('weights_only.h5'), path);
  return path;
}

describe('Keras save_weights files as state dicts', () => {
  it('is sniffed as weights only (not a model file), its datasets read as tensors', () => {
    assert.equal(detectFormat(fixture('weights_only.h5')).id, 'keras-weights-h5');
    assert.equal(detectFormat(fixture('mlp_seq.h5')).id, 'keras-h5');
    const { checkpoint } = openModel(fixture('weights_only.h5'));
    assert.deepEqual(checkpoint.tensors.map((t) => [t.name, t.shape]), [
      ['dense/dense/kernel', [6, 8]], ['dense/dense/bias', [8]], ['dense_1/dense_1/kernel', [8, 7]], ['dense_1/dense_1/bias', [7]], ['dense_2/dense_2/kernel', [7, 3]], ['dense_2/dense_2/bias', [3]],
    ]);
  });

  it('without a manifest the layers are proposed but stay visible; with one: the numpy forward pass, balanced, written, re-read', () => {
    const path = copy();
    // Without a manifest: layers proposed from the weight names, unconfirmed (their units visible).
    const guessed = networkOf(openModel(path).checkpoint);
    assert.match(guessed.notes[0], /3 layers proposed from channels-last weight names/);
    const g = analyze(compile(guessed.network, lp(2)), undefined, { skipPredictions: true });
    assert.deepEqual(g.layers.map((l) => [l.name, l.balanceable]), [['input', 0], ['dense/dense', 0], ['dense_1/dense_1', 0], ['dense_2/dense_2', 0]]);
    writeFileSync(`${path}.synbal.json`, JSON.stringify(MANIFEST));
    const { format, checkpoint: cp } = openModel(path);
    const net = networkOf(cp).network;
    const ref = reference('mlp_seq');
    for (const c of ref.cases) assert.ok(maxRelative(engineOutput(net, c.input, ref.input_shape), c.output) <= 1e-5);
    const problem = compile(net, lp(2));
    const rep = analyze(problem, undefined, { skipPredictions: true });
    assert.deepEqual(rep.layers.filter((l) => l.balanceable).map((l) => [l.name, l.balanceable]), [['dense', 8], ['dense_1', 7]]);
    const result = balance(problem);
    const changed = scaledTensors(problem, result.x);
    const target = join(path, '..', 'balanced.h5');
    format.write(cp, changed, target);
    writeFileSync(`${target}.synbal.json`, JSON.stringify(MANIFEST));
    const back = openModel(target);
    assert.equal(back.format.id, 'keras-weights-h5');
    for (const e of cp.tensors) {
      const b = bytesOf(loadTensor(back.checkpoint.tensors.find((t) => t.name === e.name)!));
      assert.ok(b.equals(bytesOf(changed.get(e.name) ?? loadTensor(e))), e.name);
    }
    const net2 = networkOf(back.checkpoint).network;
    assert.ok(compareFunctions(net, net2).maxRelative <= 1e-5);
    assert.ok(analyze(compile(net2, lp(2)), undefined, { skipPredictions: true }).maxRelativeDeficit <= 1e-6);
  });
});
