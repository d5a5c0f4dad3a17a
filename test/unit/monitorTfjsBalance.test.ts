// balance() of the TF.js logger on tf.LayersModels (pure-JS @tensorflow/tfjs): the outputs
// stay the same, every unit ends within the tolerance, and R reaches the engine's optimum on
// the same weights (the model saved as model.json + weights and opened by the engine's TF.js
// reader); the logger's balanceEvery balances between epochs of model.fit and logs the events
// the monitor reads back.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { openNetworkFile } from '../../server/src/app/openNetwork';
import { balance as engineBalance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { LogRun } from '../../client/src/monitor/runs/logRun';
import { balance, balanceLogger, hiddenPairs, layerCosts } from '../../server/src/monitor/tfjsLogger';
import { Recorder } from './monitorHelpers';
import { assertLogValid } from './monitorSchema';

const dir = mkdtempSync(join(tmpdir(), 'synbal-tfjs-balance-'));
after(() => rmSync(dir, { recursive: true, force: true }));
before(async () => {
  await tf.setBackend('cpu');
});

/** conv → pool → conv → LeakyReLU → flatten → dense → dropout → dense → out: every weighted layer touches a hidden unit. */
function convNet(seed: number): tf.Sequential {
  const init = (s: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.7, seed: seed + s });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ name: 'c1', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [6, 6, 2], kernelInitializer: init(1), biasInitializer: init(2) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ name: 'c2', filters: 5, kernelSize: 2, kernelInitializer: init(3), biasInitializer: init(4) }),
      tf.layers.leakyReLU({ alpha: 0.1 }),
      tf.layers.flatten(),
      tf.layers.dense({ name: 'd1', units: 6, activation: 'relu', kernelInitializer: init(5), biasInitializer: init(6) }),
      tf.layers.dropout({ rate: 0.1 }),
      tf.layers.dense({ name: 'out', units: 2, kernelInitializer: init(7), biasInitializer: init(8) }),
    ],
  });
}

function mlp(seed: number, sizes = [5, 12, 9, 7, 3]): tf.Sequential {
  const layers = sizes.slice(1).map((units, i) => tf.layers.dense({
    name: `fc${i + 1}`, units, activation: i < sizes.length - 2 ? 'relu' : 'linear',
    ...(i === 0 ? { inputShape: [sizes[0]] } : {}),
    // Uneven scales per layer: far from balanced at the start.
    kernelInitializer: tf.initializers.randomNormal({ mean: 0, stddev: [0.2, 3, 0.5, 2][i % 4], seed: seed + i }),
    biasInitializer: tf.initializers.randomNormal({ mean: 0, stddev: 0.3, seed: seed + 50 + i }),
  }));
  return tf.sequential({ layers });
}

/** The model as the engine sees it: saved as model.json + weights, opened by the engine's reader. */
async function engineOptimum(model: tf.LayersModel, name: string, p: number): Promise<{ RBefore: number; RAfter: number }> {
  let art: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    art = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const bin = `${name}.weights.bin`;
  writeFileSync(join(dir, bin), Buffer.from(art!.weightData as ArrayBuffer));
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ format: 'layers-model', generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`, convertedBy: null, modelTopology: art!.modelTopology, weightsManifest: [{ paths: [bin], weights: art!.weightSpecs }] }));
  const res = engineBalance(compile(openNetworkFile(path).network, lp(p)), { tolerance: 1e-11, maxIterations: 200_000 });
  return { RBefore: res.RBefore, RAfter: res.RAfter };
}

function maxAbsDiff(a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return { diff, scale };
}

function unitDeficits(model: tf.LayersModel, p: number): number {
  let worst = 0;
  for (const pair of hiddenPairs(model)) {
    const c = layerCosts(pair, p);
    for (let u = 0; u < c.in.length; u++) if (c.in[u] > 0 && c.out[u] > 0) worst = Math.max(worst, Math.abs(c.in[u] - c.out[u]) / (c.in[u] + c.out[u]));
  }
  return worst;
}

const cases: { name: string; make: () => tf.Sequential; input: number[]; p: number; tolerance: number }[] = [
  { name: 'conv net (conv, pool, LeakyReLU, flatten, dense, dropout)', make: () => convNet(11), input: [6, 6, 2], p: 2, tolerance: 1e-6 },
  { name: 'MLP 5-12-9-7-3, p = 2', make: () => mlp(21), input: [5], p: 2, tolerance: 1e-6 },
  { name: 'MLP 5-12-9-7-3, p = 1', make: () => mlp(31), input: [5], p: 1, tolerance: 1e-6 },
];

describe('TF.js balance(model)', () => {
  for (const c of cases) {
    it(`${c.name}: same outputs, deficits within the tolerance, R at the engine's optimum`, async () => {
      const m = c.make();
      const x = tf.randomNormal([16, ...c.input], 0, 1, 'float32', 5);
      const y0 = (m.predict(x) as tf.Tensor).dataSync().slice();
      const engine = await engineOptimum(m, c.name.replace(/\W+/g, '_'), c.p);
      const started = performance.now();
      const r = balance(m, { p: c.p, tolerance: c.tolerance });
      const ms = performance.now() - started;
      const y1 = (m.predict(x) as tf.Tensor).dataSync();
      const { diff, scale } = maxAbsDiff(y0, y1);
      assert.ok(diff <= 1e-5 * Math.max(1, scale), `outputs moved by ${diff} (scale ${scale})`);
      assert.ok(r.converged && r.iterations > 0);
      assert.ok(r.maxDeficitBefore > 0.1, `started unbalanced (${r.maxDeficitBefore})`);
      assert.ok(r.maxDeficit <= c.tolerance, `max deficit as written ${r.maxDeficit} > ${c.tolerance}`);
      assert.ok(Math.abs(unitDeficits(m, c.p) - r.maxDeficit) <= 1e-12, 'the reported deficit is the written weights\' one');
      assert.ok(Math.abs(r.RBefore - engine.RBefore) <= 1e-9 * engine.RBefore, `R before: ${r.RBefore} vs the engine's ${engine.RBefore}`);
      assert.ok(Math.abs(r.RAfter - engine.RAfter) <= 1e-6 * engine.RAfter, `R after: ${r.RAfter} vs the engine's optimum ${engine.RAfter}`);
      assert.ok(r.deltaR > 0 && r.deltaR === r.RBefore - r.RAfter);
      for (const w of m.getWeights()) assert.equal(w.dtype, 'float32');
      console.log(`# ${c.name}: ${r.iterations} sweeps, R ${r.RBefore.toPrecision(6)} → ${r.RAfter.toPrecision(8)} (engine ${engine.RAfter.toPrecision(8)}), max deficit ${r.maxDeficitBefore.toExponential(2)} → ${r.maxDeficit.toExponential(2)}, outputs ±${diff.toExponential(1)}, ${ms.toFixed(1)} ms`);
      // Balanced already: nothing to do.
      const again = balance(m, { p: c.p, tolerance: Math.max(c.tolerance, 2 * r.maxDeficit) });
      assert.equal(again.iterations, 0);
      assert.equal(again.deltaR, 0);
      tf.dispose([x]);
      m.dispose();
    });
  }

  it('refuses what it cannot scale', () => {
    const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'sigmoid', inputShape: [3] }), tf.layers.dense({ units: 1 })] });
    assert.throws(() => balance(m), /no balanceable hidden layer/);
    assert.throws(() => balance(mlp(1), { p: 0 }), /p must be > 0/);
  });
});

describe('TF.js logger: balanceEvery', () => {
  it('balances between epochs of model.fit and logs each event; the monitor reads them as ticks', async () => {
    const m = mlp(41);
    // Adam moves each weight by about lr whatever its scale: it unbalances a balanced network.
    m.compile({ optimizer: tf.train.adam(0.02), loss: 'meanSquaredError' });
    const file = join(dir, 'fit-balance.jsonl');
    const logger = balanceLogger(m, { file, every: 2, run: 'balanced every 2 epochs', balanceEvery: 2, tolerance: 1e-6 });
    const x = tf.randomNormal([16, 5], 0, 1, 'float32', 3);
    const y = tf.randomNormal([16, 3], 0, 1, 'float32', 4);
    await m.fit(x, y, { batchSize: 4, epochs: 4, callbacks: logger, shuffle: false });
    // 4 batches per epoch: records at steps 0, 2, …, 16, plus the balanced state after epochs 2 and 4.
    assert.equal(assertLogValid(file), 11);
    const recs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const events = recs.filter((r) => r.balance);
    assert.deepEqual(events.map((r) => r.step), [8, 16]);
    for (const e of events) {
      assert.ok(e.balance.deltaR > 0 && e.balance.iterations > 0 && e.balance.converged === true && e.balance.maxDeficit <= 1e-6, JSON.stringify(e.balance));
      assert.ok(Math.abs(e.balance.RBefore - e.balance.RAfter - e.balance.deltaR) <= 1e-12 * e.balance.RBefore);
    }
    // The first event saves much more than the second: the network was unbalanced at the start.
    assert.ok(events[0].balance.deltaR > 10 * events[1].balance.deltaR, `${events[0].balance.deltaR} vs ${events[1].balance.deltaR}`);
    assert.equal(logger.events.length, 2);
    // The record of a balance event is the balanced state: its deficits are within the tolerance.
    const last = events[1].layers.map((l: { in: number[]; out: number[] }) => l.in.map((v, u) => Math.abs(v - l.out[u]) / (v + l.out[u])));
    assert.ok(Math.max(...last.flat()) <= 1e-6);

    const ev = new Recorder();
    const run = new LogRun(file, 'r', ev, { pollMs: 60_000 });
    await run.pollNow();
    const s = ev.of('series')[0].s;
    assert.deepEqual([...s.balance!.index], recs.flatMap((r, i) => (r.balance ? [i] : [])));
    assert.equal(s.balance!.values[0], events[0].balance.deltaR);
    run.dispose();
    tf.dispose([x, y]);
  });
});
