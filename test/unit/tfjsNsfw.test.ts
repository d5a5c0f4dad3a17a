// nsfwjs@4.3.0's MobileNetV2 (real-models.md): a TF.js layers model (Keras 2.2.4 topology)
// wrapped in a UMD script, its weights a base64 uint8-quantized shard in another script. Fetched
// from the npm registry at test time into the git-ignored cache (test/support/thirdPartyPackages.ts).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { normal, rng } from '../../server/src/engine/random';
import { loadTensor } from '../../server/src/formats/core/checkpoint';
import { tfjsFormat } from '../../server/src/formats/tfjs/index';
import { tfjsToNetwork } from '../../server/src/formats/tfjs/network';
import { fetchPackage } from '../support/thirdPartyPackages';
import { CACHE } from '../support/thirdPartyModels';

const PKG = 'nsfwjs';
const VERSION = '4.3.0';
const FILE = 'dist/models/mobilenet_v2/model.min.js';
function fetchNsfw(): string {
  const path = join(fetchPackage(PKG, VERSION), FILE);
  if (!existsSync(path)) throw new Error(`${PKG}@${VERSION} has no ${FILE}`);
  return path;
}

describe('nsfwjs@4.3.0 MobileNetV2 (TF.js layers model in UMD scripts, uint8 weights)', () => {
  it('reads it; ReLU6 layers are not homogeneous; the Dense head (256, 128 relu) balances', () => {
    const path = fetchNsfw();
    assert.ok(tfjsFormat.sniff(readFileSync(path).subarray(0, 4096), path));
    const cp = tfjsFormat.open(path);
    assert.equal(cp.tensors.length, 266);
    assert.ok(cp.tensors.every((t) => t.readOnlyReason === 'quantized to uint8: not written back'));
    const { network: net, notes } = tfjsToNetwork(cp);
    assert.match(notes[0], /Keras 2\.2\.4 config of Model model "model_1" \(162 layers\)/);
    const problem = compile(net, lp(2));
    const rep = analyze(problem, undefined, { skipPredictions: true });
    const layers = new Map(rep.layers.map((l) => [l.name, l]));
    const relu6 = rep.layers.filter((l) => l.reasons.some((r) => r.reason === 'activation relu6 is not positively homogeneous'));
    assert.ok(relu6.length >= 30, `${relu6.length} layers with ReLU6`);
    for (const name of ['Conv1', 'Conv_1', 'block_16_expand']) {
      const l = layers.get(name)!;
      assert.equal(l.balanceable, 0, name);
      assert.deepEqual(l.reasons.map((r) => r.reason), ['activation relu6 is not positively homogeneous'], name);
    }
    assert.deepEqual([layers.get('dense_1')!.units, layers.get('dense_1')!.balanceable], [256, 256]);
    assert.deepEqual([layers.get('dense_2')!.units, layers.get('dense_2')!.balanceable], [128, 128]);
    // Balancing the head keeps the function; the quantized weights cannot be written back.
    const result = balance(problem, { scope: { kind: 'layer', layer: 'dense_1' } });
    const result2 = balance(problem, { scope: { kind: 'layer', layer: 'dense_2' }, start: result.x });
    assert.ok(result2.RAfter < result.RBefore);
    const changed = scaledTensors(problem, result2.x);
    assert.deepEqual([...changed.keys()].sort(), ['dense_1/bias', 'dense_1/kernel', 'dense_2/bias', 'dense_2/kernel', 'dense_3/kernel']);
    // The head's logits on random 1280-feature inputs, before and after (the whole network's
    // forward pass at 224×224 is too slow for a unit test).
    const w = (name: string) => changed.get(name) ?? loadTensor(cp.tensors.find((t) => t.name === name)!);
    const orig = (name: string) => loadTensor(cp.tensors.find((t) => t.name === name)!);
    const head = (get: typeof w, x: Float64Array) => {
      let v = x;
      for (const [layer, relu] of [['dense_1', true], ['dense_2', true], ['dense_3', false]] as const) {
        const k = get(`${layer}/kernel`);
        const b = get(`${layer}/bias`);
        const [n, m] = k.shape;
        const out = new Float64Array(m);
        for (let j = 0; j < m; j++) {
          let s = b.data[j];
          for (let i = 0; i < n; i++) s += v[i] * k.data[i * m + j];
          out[j] = relu ? Math.max(0, s) : s;
        }
        v = out;
      }
      return v;
    };
    const draw = normal(rng(7));
    for (let c = 0; c < 3; c++) {
      const x = Float64Array.from({ length: 1280 }, () => Math.max(0, draw()));
      const a = head(orig, x);
      const b = head(w, x);
      for (let j = 0; j < a.length; j++) assert.ok(Math.abs(a[j] - b[j]) <= 1e-4 * (1 + Math.abs(a[j])), `logit ${j}: ${a[j]} vs ${b[j]}`);
    }
    assert.throws(() => tfjsFormat.write(cp, changed, join(CACHE, 'never.json')), /cannot be written: quantized to uint8|JavaScript module is not written back/);
  });
});
