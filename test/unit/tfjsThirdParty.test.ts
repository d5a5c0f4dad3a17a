// Real TF.js files that npm packages ship (fetched at test time into the git-ignored cache):
// nsfwjs@4.3.0's MobileNetV2 "mid" graph model (wrapped in UMD scripts, uint8 weights) and
// @vladmandic/face-api@1.7.15's weights manifests without a topology (face-api.js format).
// Both licences are MIT; nothing is committed.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import type { Network } from '../../server/src/engine/network';
import { lp } from '../../server/src/engine/regularizer';
import { compareFunctions, verifyLimit } from '../../server/src/engine/verify';
import { loadTensor } from '../../server/src/formats/core/checkpoint';
import { prepareKeras } from '../../server/src/formats/keras/index';
import { detectFormat, networkOf } from '../../server/src/formats/registry';
import { tfjsFormat, tfjsInfoOf, tfjsWeightsFormat, type TfjsGraphStructure } from '../../server/src/formats/tfjs/index';
import { tfjsToNetwork } from '../../server/src/formats/tfjs/network';
import { fetchPackage } from '../support/thirdPartyPackages';
import { randomInput, runGraphModel } from '../support/tfjsGraphModels';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
before(async () => {
  await prepareKeras();
});

function scratchDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'synbal-tfjs-3p-'));
  dirs.push(d);
  return d;
}

function summary(net: Network) {
  const rep = analyze(compile(net, lp(2)), undefined, { skipPredictions: true });
  const reasons = new Map<string, number>();
  for (const l of rep.layers) for (const r of l.reasons) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + (r.units ?? 0));
  return {
    layers: rep.layers.length,
    units: rep.layers.reduce((a, l) => a + l.units, 0),
    balanceable: rep.layers.reduce((a, l) => a + l.balanceable, 0),
    reasons: [...reasons.keys()],
  };
}

describe('nsfwjs@4.3.0 MobileNetV2 mid (TF.js graph model in UMD scripts, uint8 weights)', () => {
  it('reads every op: ReLU6 units visible, the linear bottlenecks balance; a float32 copy balanced runs the same in TF.js', async () => {
    const pkg = fetchPackage('nsfwjs', '4.3.0');
    const path = join(pkg, 'dist/models/mobilenet_v2_mid/model.min.js');
    const cp = tfjsFormat.open(path);
    assert.equal(cp.tensors.length, 108);
    const { network } = tfjsToNetwork(cp);
    const s = summary(network);
    assert.deepEqual([s.layers, s.units, s.balanceable], [65, 25091, 3224]);
    assert.deepEqual(s.reasons, ['activation relu6 is not positively homogeneous']);
    const problem = compile(network, lp(2));
    const result = balance(problem);
    assert.ok(result.RAfter < result.RBefore);
    const changed = scaledTensors(problem, result.x);
    assert.throws(() => tfjsFormat.write(cp, changed, join(scratchDir(), 'never.json')), /JavaScript module is not written back|quantized to uint8/);
    // The same graph with its dequantized weights as a plain float32 model.json + shard: the
    // balanced copy is written, and TF.js's GraphModel computes the same class probabilities.
    const info = tfjsInfoOf(cp);
    const dir = scratchDir();
    const weights = cp.tensors.map((e) => loadTensor(e));
    writeFileSync(join(dir, 'w.bin'), Buffer.concat(weights.map((t) => Buffer.from(Float32Array.from(t.data as ArrayLike<number>).buffer))));
    const topo = (info.json as { modelTopology: unknown }).modelTopology;
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'graph-model', modelTopology: topo, weightsManifest: [{ paths: ['w.bin'], weights: weights.map((t) => ({ name: t.name, shape: t.shape, dtype: 'float32' })) }] }));
    const plain = tfjsFormat.open(join(dir, 'model.json'));
    const p2 = compile(tfjsToNetwork(plain).network, lp(2));
    const changed2 = scaledTensors(p2, balance(p2).x);
    tfjsFormat.write(plain, changed2, join(dir, 'balanced.json'));
    const x = { shape: [224, 224, 3], data: randomInput(224 * 224 * 3).map((v) => (v + 1) / 2) };
    const input = (cp.structure as TfjsGraphStructure).nodes.find((n) => n.op === 'Placeholder')!.name;
    const [a] = await runGraphModel(join(dir, 'model.json'), { [input]: x });
    const [b] = await runGraphModel(join(dir, 'balanced.json'), { [input]: x });
    assert.ok(changed2.size > 0);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-4, `class ${i}: ${a[i]} vs ${b[i]}`);
  });
});

describe('@vladmandic/face-api@1.7.15 weights manifests (no topology: state dicts)', () => {
  const MANIFESTS = [
    ['age_gender_model', 51], ['face_expression_model', 49], ['face_landmark_68_model', 49], ['face_landmark_68_tiny_model', 28],
    ['face_recognition_model', 117], ['ssd_mobilenetv1_model', 151], ['tiny_face_detector_model', 19],
  ] as const;

  it('every manifest is sniffed and read: uint8 weights dequantized and read-only', () => {
    const pkg = fetchPackage('@vladmandic/face-api', '1.7.15');
    for (const [name, count] of MANIFESTS) {
      const path = join(pkg, 'model', `${name}-weights_manifest.json`);
      assert.equal(detectFormat(path).id, 'tfjs-weights', name);
      const cp = tfjsWeightsFormat.open(path);
      assert.equal(cp.tensors.length, count, name);
      assert.ok(cp.tensors.some((t) => t.readOnlyReason === 'quantized to uint8: not written back'), name);
    }
    assert.ok(readdirSync(join(pkg, 'model')).length >= 14);
  });

  it('without a manifest: layers proposed from the weight names, every unit visible until a manifest confirms them', () => {
    const pkg = fetchPackage('@vladmandic/face-api', '1.7.15');
    const want: Record<string, [number, number]> = {
      age_gender_model: [37, 5094], face_expression_model: [33, 3594], face_landmark_68_model: [33, 3723], face_landmark_68_tiny_model: [19, 1355],
      face_recognition_model: [30, 3555], ssd_mobilenetv1_model: [47, 13322], tiny_face_detector_model: [13, 1532],
    };
    for (const [name] of MANIFESTS) {
      const { network, notes } = networkOf(tfjsWeightsFormat.open(join(pkg, 'model', `${name}-weights_manifest.json`)));
      assert.match(notes[0], /layers proposed from channels-last weight names/, name);
      const s = summary(network);
      assert.deepEqual([s.layers, s.units, s.balanceable], [...want[name], 0], name);
      assert.ok(s.reasons.includes('activation unknown'), name);
    }
  });

  it('tiny_face_detector with a manifest: the separable convolutions (leaky ReLU 0.1) balance; the engine check agrees; writing says read-only', () => {
    const pkg = fetchPackage('@vladmandic/face-api', '1.7.15');
    const dir = scratchDir();
    for (const f of ['tiny_face_detector_model-weights_manifest.json', 'tiny_face_detector_model.bin']) copyFileSync(join(pkg, 'model', f), join(dir, f));
    const path = join(dir, 'tiny_face_detector_model-weights_manifest.json');
    const channels = [16, 32, 64, 128, 256, 512];
    const layers: Record<string, unknown>[] = [{ name: 'conv0', kind: 'conv', weight: 'conv0/filters', bias: 'conv0/bias', layout: 'in-out', padding: [1, 1], activation: 'leaky_relu:0.1' }];
    for (let i = 1; i <= 5; i++) {
      layers.push({ name: `conv${i}/depthwise`, kind: 'conv', weight: `conv${i}/depthwise_filter`, layout: 'in-out', groups: channels[i - 1], padding: [1, 1], activation: 'identity' });
      layers.push({ name: `conv${i}`, kind: 'conv', weight: `conv${i}/pointwise_filter`, bias: `conv${i}/bias`, layout: 'in-out', activation: 'leaky_relu:0.1' });
    }
    layers.push({ name: 'conv8', kind: 'conv', weight: 'conv8/filters', bias: 'conv8/bias', layout: 'in-out' });
    writeFileSync(`${path}.synbal.json`, JSON.stringify({ version: 1, input: { spatial: [6, 6] }, layers }));
    const cp = tfjsWeightsFormat.open(path);
    const { network } = networkOf(cp);
    const s = summary(network);
    assert.deepEqual([s.layers, s.units, s.reasons], [13, 1532, []]);
    assert.equal(s.balanceable, 16 + (16 + 32) + (32 + 64) + (64 + 128) + (128 + 256) + (256 + 512));
    const problem = compile(network, lp(2));
    const result = balance(problem);
    assert.ok(result.RAfter < result.RBefore);
    const changed = scaledTensors(problem, result.x);
    const balanced: Network = { ...network, tensors: network.tensors.map((t) => changed.get(t.name) ?? t) };
    const cmp = compareFunctions(network, balanced);
    assert.ok(cmp.maxRelative <= verifyLimit(changed.values()), JSON.stringify(cmp));
    assert.throws(() => tfjsWeightsFormat.write(cp, changed, join(dir, 'balanced-weights_manifest.json')), /cannot be written: quantized to uint8: not written back/);
  });
});
