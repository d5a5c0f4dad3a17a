// The TF.js balance logger as a model.fit callback on a conv net (conv → pool → conv →
// flatten → dense → dropout → dense): which layers it logs, and IN/OUT against costs computed
// independently with tf ops from the trained weights.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { decodeFloats } from '../../server/src/contract/balanceLog';
import { balanceLogger, hiddenPairs } from '../../server/src/monitor/tfjsLogger';
import { assertLogValid } from './monitorSchema';

const dir = mkdtempSync(join(tmpdir(), 'synbal-tfjs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function model(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ name: 'c1', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [6, 6, 2] }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ name: 'c2', filters: 5, kernelSize: 2, activation: 'relu' }),
      tf.layers.flatten(),
      tf.layers.dense({ name: 'd1', units: 6, activation: 'relu' }),
      tf.layers.dropout({ rate: 0.1 }),
      tf.layers.dense({ name: 'd2', units: 3, activation: 'tanh' }),
      tf.layers.dense({ name: 'out', units: 2 }),
    ],
  });
}

/** Reference costs from the weights with tf ops: Σ w² over everything but the unit's axis. */
function reference(m: tf.Sequential, name: string, next: string): { in: number[]; out: number[] } {
  const [k, b] = m.getLayer(name).getWeights();
  const r = k.shape.length;
  const inC = tf.add(tf.sum(tf.square(k), [...Array(r - 1).keys()]), tf.square(b));
  const k2 = m.getLayer(next).getWeights()[0];
  const units = k.shape[r - 1];
  // Flatten is channels-last: the dense kernel's rows are (position, channel) pairs.
  const k2u = k2.shape.length === 2 ? tf.reshape(k2, [-1, units, k2.shape[1]]) : k2;
  const axes = k2u.shape.map((_, a) => a).filter((a) => a !== k2u.shape.length - 2);
  const outC = tf.sum(tf.square(k2u), axes);
  return { in: Array.from(inC.dataSync()), out: Array.from(outC.dataSync()) };
}

describe('TF.js balance logger', () => {
  it('finds the hidden layers: relu/linear Dense or Conv followed (through pass-through layers) by Dense or Conv', () => {
    assert.deepEqual(hiddenPairs(model()).map((p) => `${p.layer.name}→${p.next.name}`), ['c1→c2', 'c2→d1', 'd1→d2']);
  });

  it('logs every N batches of model.fit, with IN/OUT as the weights give them', async () => {
    await tf.setBackend('cpu');
    const m = model();
    m.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
    const file = join(dir, 'fit.jsonl');
    const logger = balanceLogger(m, { file, every: 2, run: 'fit' });
    const x = tf.randomNormal([16, 6, 6, 2], 0, 1, 'float32', 3);
    const y = tf.randomNormal([16, 2], 0, 1, 'float32', 4);
    await m.fit(x, y, { batchSize: 4, epochs: 2, callbacks: logger, shuffle: false });
    assert.equal(assertLogValid(file), 5);
    const recs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(recs.map((r) => r.step), [0, 2, 4, 6, 8]);
    assert.ok(recs.slice(1).every((r) => typeof r.loss === 'number'));
    const last = recs.at(-1);
    assert.deepEqual(last.layers.map((l: { name: string }) => l.name), ['c1', 'c2', 'd1']);
    for (const [name, next] of [['c1', 'c2'], ['c2', 'd1'], ['d1', 'd2']]) {
      const logged = last.layers.find((l: { name: string }) => l.name === name);
      const ref = reference(m, name, next);
      const inC = decodeFloats(logged.in, 'in');
      const outC = decodeFloats(logged.out, 'out');
      assert.equal(inC.length, ref.in.length);
      for (let u = 0; u < inC.length; u++) {
        assert.ok(Math.abs(inC[u] - ref.in[u]) <= 1e-5 * ref.in[u], `${name}#${u} IN ${inC[u]} vs ${ref.in[u]}`);
        assert.ok(Math.abs(outC[u] - ref.out[u]) <= 1e-5 * ref.out[u], `${name}#${u} OUT ${outC[u]} vs ${ref.out[u]}`);
      }
      const norm = Math.sqrt(ref.in.reduce((a, v) => a + v, 0));
      assert.ok(Math.abs(logged.weightNorm - norm) <= 1e-5 * norm);
    }
    // The first record is the untrained network: training moved the costs.
    assert.notDeepEqual(recs[0].layers[0].in, last.layers[0].in);
    tf.dispose([x, y]);
  });

  it('refuses a model with nothing to log', () => {
    const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'sigmoid', inputShape: [3] }), tf.layers.dense({ units: 1 })] });
    assert.throws(() => balanceLogger(m, { write: () => undefined }), /no balanceable hidden layer/);
  });
});
