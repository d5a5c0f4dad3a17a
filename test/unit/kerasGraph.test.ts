// Keras configs to engine networks: which units balance and why the others do not, the engine's
// forward pass against an independent numpy forward pass, and balance → write → re-open.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import type { Network } from '../../server/src/engine/network';
import { lp } from '../../server/src/engine/regularizer';
import { compareFunctions } from '../../server/src/engine/verify';
import { loadTensor, type Checkpoint } from '../../server/src/formats/core/checkpoint';
import { kerasH5Format, kerasZipFormat, prepareKeras } from '../../server/src/formats/keras/index';
import type { ModelFormat } from '../../server/src/formats/registry';
import { kerasToNetwork } from '../../server/src/formats/keras/network';
import { tensorValues } from '../../server/src/tensor/tensor';
import { engineOutput, fixture, functionalConfig, maxRelative, memoryKeras, reference, scratch, softmax } from '../fixtures/keras/helpers';

before(async () => {
  await prepareKeras();
});

function formatOf(file: string): ModelFormat {
  return file.endsWith('.keras') ? kerasZipFormat : kerasH5Format;
}

function group(net: Network, name: string) {
  const g = net.groups.find((x) => x.name === name);
  assert.ok(g, `no group ${name}`);
  return g;
}

function layerReport(net: Network) {
  const rep = analyze(compile(net, lp(2)));
  return Object.fromEntries(rep.layers.map((l) => [l.name, { balanceable: l.balanceable, units: l.units, reasons: l.reasons.map((r) => r.reason) }]));
}

/** Engine forward pass of the file's network against the numpy reference, every case. */
function checkReference(net: Network, model: string, post: (y: Float64Array) => ArrayLike<number> = (y) => y): void {
  const ref = reference(model);
  for (const c of ref.cases) {
    const y = post(engineOutput(net, c.input, ref.input_shape));
    assert.ok(maxRelative(y, c.output) <= 1e-5, `${model}: engine ${Array.from(y)} vs numpy ${c.output}`);
  }
}

describe('Keras models as networks', () => {
  it('Sequential MLP: relu, and a linear Dense followed by LeakyReLU and Dropout', () => {
    const { network: net, notes } = kerasToNetwork(kerasH5Format.open(fixture('mlp_seq.h5')));
    assert.deepEqual(net.groups.map((g) => [g.name, g.role, g.size]), [['dense_input', 'input', 6], ['dense', 'hidden', 8], ['dense_1', 'hidden', 7], ['dense_2', 'output', 3]]);
    assert.deepEqual(group(net, 'dense_1').activation, { kind: 'bilu', neg: 0.2, pos: 1, name: 'leaky_relu' });
    assert.equal(group(net, 'dense_1').activationSource, 'leaky_re_lu (LeakyReLU)');
    const rep = layerReport(net);
    assert.equal(rep.dense.balanceable, 8);
    assert.equal(rep.dense_1.balanceable, 7);
    assert.match(notes[0], /Keras 2\.11\.0 config of Sequential model "sequential"/);
    checkReference(net, 'mlp_seq');
  });

  it('CNN: Conv2D → BatchNormalization → ReLU → MaxPooling fold into one group; same padding with stride 2', () => {
    const { network: net, notes } = kerasToNetwork(kerasH5Format.open(fixture('cnn_bn.h5')));
    const conv = group(net, 'conv2d');
    assert.equal(conv.activation?.name, 'relu');
    assert.deepEqual(conv.batchnorm, {
      mean: 'batch_normalization/batch_normalization/moving_mean:0',
      variance: 'batch_normalization/batch_normalization/moving_variance:0',
      gamma: 'batch_normalization/batch_normalization/gamma:0',
      beta: 'batch_normalization/batch_normalization/beta:0',
      eps: 0.001,
    });
    assert.deepEqual(conv.pool, { kind: 'max', kernel: [2, 2], stride: [2, 2], inputSpatial: [8, 8] });
    assert.deepEqual(conv.spatial, [4, 4]);
    const c1 = net.connections.find((c) => c.to === 'conv2d_1' && c.kind === 'conv')!;
    assert.deepEqual(c1.geometry, { stride: [2, 2], pad: [0, 0], padEnd: [1, 1] });
    const mean = net.connections.find((c) => c.tensor?.endsWith('moving_mean:0'))!;
    assert.equal(mean.regularized, false);
    const fc = net.connections.find((c) => c.to === 'dense' && c.kind === 'dense')!;
    assert.deepEqual(fc.source, { axis: 0, start: 0, length: 24 });
    const rep = layerReport(net);
    assert.deepEqual([rep.conv2d.balanceable, rep.conv2d_1.balanceable, rep.dense.balanceable], [4, 6, 5]);
    assert.equal(notes.length, 1);
    checkReference(net, 'cnn_bn');
  });

  it('the same CNN from a Keras 3 archive, layers renamed', () => {
    const { network: net } = kerasToNetwork(kerasZipFormat.open(fixture('cnn_bn.keras')));
    assert.deepEqual(net.groups.map((g) => g.name), ['image', 'stem', 'body', 'fc', 'logits']);
    assert.equal(group(net, 'stem').batchnorm?.beta, 'stem_bn/beta');
    checkReference(net, 'cnn_bn');
  });

  it('residual Add ties its inputs; Concatenate feeds the next Dense by parts', () => {
    const { network: net } = kerasToNetwork(kerasH5Format.open(fixture('residual_concat.h5')));
    assert.deepEqual(net.connections.filter((c) => c.kind === 'skip').map((c) => `${c.from}→${c.to}`), ['d1→add', 'd2→add']);
    assert.equal(group(net, 'add').activation?.name, 'relu');
    assert.equal(group(net, 'd2').activation?.name, 'identity');
    const parts = net.connections.filter((c) => c.to === 'out' && c.kind === 'dense');
    assert.deepEqual(parts.map((c) => [c.from, c.source]), [['add', { axis: 0, start: 0, length: 8 }], ['d3', { axis: 0, start: 8, length: 5 }]]);
    const problem = compile(net, lp(2));
    // d1, d2 and add share one scale per unit: 8 variables for 24 units, plus d3's 5.
    assert.equal(problem.nVars, 13);
    checkReference(net, 'residual_concat');
  });

  it('ReLU(max_value=6) and sigmoid units stay visible, with reasons; softmax output left to the caller', () => {
    const { network: net, notes } = kerasToNetwork(kerasH5Format.open(fixture('negative.h5')));
    const rep = layerReport(net);
    assert.deepEqual(rep.dense, { balanceable: 0, units: 8, reasons: ['activation relu6 is not positively homogeneous'] });
    assert.deepEqual(rep.dense_1, { balanceable: 0, units: 6, reasons: ['activation sigmoid is not positively homogeneous'] });
    assert.equal(rep.dense_2.balanceable, 4);
    assert.equal(group(net, 'dense_3').activation, undefined);
    assert.ok(notes.some((n) => /output dense_3: its softmax is left out of forward passes/.test(n)));
    checkReference(net, 'negative', softmax);
  });

  it('U-Net-like: depthwise conv, PReLU per channel, transposed conv, a concatenation of feature maps', () => {
    for (const file of ['unet_mini.h5', 'unet_mini.keras']) {
      const { network: net, notes } = kerasToNetwork(formatOf(file).open(fixture(file)));
      const dw = net.connections.find((c) => c.to === 'dw' && c.kind === 'conv')!;
      assert.deepEqual([dw.groups, dw.target, dw.source], [4, { axis: 2 }, { axis: 3 }]);
      assert.equal(group(net, 'dw').activation?.name, 'prelu');
      assert.equal((group(net, 'dw').activation as unknown as { neg: number[] }).neg.length, 4);
      // The pooled copy of dw_act is a group of its own (dw_act is also concatenated), tied to dw.
      assert.deepEqual(net.connections.filter((c) => c.kind === 'skip').map((c) => `${c.from}→${c.to}`), ['dw→down']);
      const up = net.connections.find((c) => c.to === 'up' && c.kind === 'conv')!;
      assert.deepEqual([up.target, up.source], [{ axis: 2 }, { axis: 3 }]);
      const head = net.connections.filter((c) => c.to === 'head' && c.kind === 'conv');
      assert.deepEqual(head.map((c) => [c.from, c.source]), [['up', { axis: 2, start: 0, length: 4 }], ['dw', { axis: 2, start: 4, length: 4 }]]);
      const rep = layerReport(net);
      assert.deepEqual(['enc', 'dw', 'down', 'mid', 'up'].map((n) => rep[n].balanceable), [4, 4, 4, 6, 4]);
      assert.ok(notes.some((n) => /not exact: up is a transposed convolution.*head convolves a concatenation/.test(n)));
    }
  });
});

/** Balances the file's network, writes it, re-opens it; returns both networks and the changes. */
function roundTrip(file: string) {
  const dir = scratch(file);
  const fmt = formatOf(file);
  const cp = fmt.open(join(dir, file));
  const net = kerasToNetwork(cp).network;
  const problem = compile(net, lp(2));
  const result = balance(problem);
  assert.ok(result.converged, `${file}: balance did not converge`);
  const changed = scaledTensors(problem, result.x);
  assert.ok(changed.size > 0);
  const target = join(dir, `balanced-${file}`);
  fmt.write(cp, changed, target);
  const cp2 = fmt.open(target);
  const net2 = kerasToNetwork(cp2).network;
  return { cp, cp2, net, net2, changed };
}

function sameBytes(cp: Checkpoint, cp2: Checkpoint, name: string): boolean {
  const a = loadTensor(cp.tensors.find((t) => t.name === name)!);
  const b = loadTensor(cp2.tensors.find((t) => t.name === name)!);
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
}

describe('balancing Keras files', () => {
  for (const [file, model] of [
    ['mlp_seq.h5', 'mlp_seq'],
    ['cnn_bn.h5', 'cnn_bn'],
    ['cnn_bn.keras', 'cnn_bn'],
    ['residual_concat.h5', 'residual_concat'],
    ['negative.h5', 'negative'],
    ['mlp_seq.keras', 'mlp_seq'],
    ['mlp_storage.h5', 'mlp_seq'],
  ] as const) {
    it(`${file}: balance, write, re-open — same function, balanced`, () => {
      const { cp, cp2, net, net2, changed } = roundTrip(file);
      for (const e of cp.tensors) {
        if (changed.has(e.name)) {
          assert.deepEqual(Array.from(loadTensor(cp2.tensors.find((t) => t.name === e.name)!).data), Array.from(changed.get(e.name)!.data), e.name);
          assert.ok(!sameBytes(cp, cp2, e.name), `${e.name} should have changed`);
        } else {
          assert.ok(sameBytes(cp, cp2, e.name), `${e.name} should be unchanged`);
        }
      }
      assert.ok(compareFunctions(net, net2).maxRelative <= 1e-5);
      checkReference(net2, model, model === 'negative' ? softmax : undefined);
      const after = analyze(compile(net2, lp(2)));
      assert.ok(after.maxRelativeDeficit <= 2e-6, `max relative deficit ${after.maxRelativeDeficit}`);
      const before = analyze(compile(net, lp(2)));
      assert.ok(after.R < before.R);
    });
  }

  it('unet_mini.keras: balances and writes (its forward pass is beyond the engine)', () => {
    const { net2, changed } = roundTrip('unet_mini.keras');
    assert.ok(changed.has('up/kernel') && changed.has('dw/depthwise_kernel'));
    assert.ok(analyze(compile(net2, lp(2))).maxRelativeDeficit <= 2e-6);
  });
});

describe('Keras layers beyond the fixtures (in-memory configs)', () => {
  it('BatchNormalization after the activation gets a group of its own, tied to its input', () => {
    const cfg = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 5] }, []],
        ['Dense', 'h', { units: 6, activation: 'relu', use_bias: true }, ['x']],
        ['BatchNormalization', 'bn', { axis: -1, epsilon: 0.01 }, ['h']],
        ['Dense', 'y', { units: 2, activation: 'linear', use_bias: true }, ['bn']],
      ],
      ['y'],
    );
    const cp = memoryKeras(cfg, { h: { kernel: [5, 6], bias: [6] }, bn: { gamma: [6], beta: [6], moving_mean: [6], moving_variance: [6] }, y: { kernel: [6, 2], bias: [2] } });
    const net = kerasToNetwork(cp).network;
    assert.deepEqual(net.connections.filter((c) => c.kind === 'skip').map((c) => `${c.from}→${c.to}`), ['h→bn']);
    assert.equal(group(net, 'bn').batchnorm?.eps, 0.01);
    assert.equal(group(net, 'h').batchnorm, undefined);
    checkBalancePreservesFunction(net);
  });

  it('Keras 3 inbound nodes; GlobalAveragePooling; SeparableConv2D; ZeroPadding2D folded into the next conv', () => {
    const t = (name: string) => ({ class_name: '__keras_tensor__', config: { shape: null, dtype: 'float32', keras_history: [name, 0, 0] } });
    const layer = (cls: string, name: string, config: Record<string, unknown>, inputs: string[]) => ({
      module: 'keras.layers',
      class_name: cls,
      name,
      config: { name, ...config },
      registered_name: null,
      inbound_nodes: inputs.length ? [{ args: inputs.length === 1 ? [t(inputs[0])] : [inputs.map(t)], kwargs: {} }] : [],
    });
    const cfg = {
      module: 'keras.src.models.functional',
      class_name: 'Functional',
      registered_name: 'Functional',
      config: {
        name: 'k3',
        layers: [
          layer('InputLayer', 'img', { batch_shape: [null, 6, 6, 2] }, []),
          layer('ZeroPadding2D', 'zp', { padding: [[1, 1], [1, 1]] }, ['img']),
          layer('Conv2D', 'c', { filters: 3, kernel_size: [3, 3], strides: [1, 1], padding: 'valid', activation: 'relu', use_bias: true }, ['zp']),
          layer('SeparableConv2D', 's', { kernel_size: [3, 3], strides: [1, 1], padding: 'same', depth_multiplier: 2, activation: 'relu', use_bias: true }, ['c']),
          layer('GlobalAveragePooling2D', 'gap', {}, ['s']),
          layer('Dense', 'y', { units: 2, activation: 'linear', use_bias: true }, ['gap']),
        ],
        input_layers: [['img', 0, 0]],
        output_layers: [['y', 0, 0]],
      },
    };
    const cp = memoryKeras(cfg, { c: { kernel: [3, 3, 2, 3], bias: [3] }, s: { depthwise_kernel: [3, 3, 3, 2], pointwise_kernel: [1, 1, 6, 4], bias: [4] }, y: { kernel: [4, 2], bias: [2] } });
    const net = kerasToNetwork(cp).network;
    assert.deepEqual(net.connections.find((c) => c.to === 'c' && c.kind === 'conv')!.geometry, { stride: [1, 1], pad: [1, 1], padEnd: [1, 1] });
    assert.deepEqual(group(net, 'c').spatial, [6, 6]);
    assert.deepEqual(group(net, 's/depthwise').activation?.name, 'identity');
    assert.deepEqual(net.tensors.find((x) => x.name === 's/depthwise_kernel')!.shape, [3, 3, 6, 1]);
    assert.deepEqual(group(net, 's').pool, { kind: 'avg', kernel: [6, 6], stride: [6, 6], inputSpatial: [6, 6] });
    const rep = layerReport(net);
    assert.deepEqual([rep.c.balanceable, rep['s/depthwise'].balanceable, rep.s.balanceable], [3, 6, 4]);
    checkBalancePreservesFunction(net);
  });

  it('layers that do not pass a scale through keep their inputs fixed; their outputs become inputs', () => {
    const cfg = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 4] }, []],
        ['Dense', 'a', { units: 5, activation: 'relu', use_bias: true }, ['x']],
        ['LayerNormalization', 'ln', { axis: -1 }, ['a']],
        ['Dense', 'b', { units: 3, activation: 'relu', use_bias: true }, ['ln']],
        ['Dense', 'y', { units: 2, activation: 'linear', use_bias: true }, ['b']],
      ],
      ['y'],
    );
    const cp = memoryKeras(cfg, { a: { kernel: [4, 5], bias: [5] }, ln: { gamma: [5], beta: [5] }, b: { kernel: [5, 3], bias: [3] }, y: { kernel: [3, 2], bias: [2] } });
    const { network: net, notes } = kerasToNetwork(cp);
    assert.equal(group(net, 'ln').role, 'input');
    const rep = layerReport(net);
    assert.deepEqual(rep.a.reasons, ['feeds ln (LayerNormalization): LayerNormalization layers are not supported']);
    assert.equal(rep.b.balanceable, 3);
    assert.ok(notes.some((n) => n.startsWith('ln (LayerNormalization)')));
  });

  it('a shared layer, a nested model and channels_first layers are treated as opaque', () => {
    const cfg = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 4] }, []],
        ['Dense', 'shared', { units: 4, activation: 'relu', use_bias: true }, ['x']],
        ['Dense', 'y', { units: 2, activation: 'linear', use_bias: true }, ['shared']],
      ],
      ['y'],
    ) as { config: { layers: { name: string; inbound_nodes: unknown[] }[] } };
    cfg.config.layers[1].inbound_nodes.push([['x', 0, 0, {}]]);
    const cp = memoryKeras(cfg, { shared: { kernel: [4, 4], bias: [4] }, y: { kernel: [4, 2], bias: [2] } });
    const { network: net, notes } = kerasToNetwork(cp);
    assert.equal(group(net, 'shared').role, 'input');
    assert.ok(notes.some((n) => /applied 2 times \(shared weights\)/.test(n)));

    const cfg2 = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 4, 4, 2] }, []],
        ['Conv2D', 'c', { filters: 3, kernel_size: [1, 1], padding: 'valid', activation: 'relu', use_bias: true }, ['x']],
        ['Conv2D', 'cf', { filters: 3, kernel_size: [1, 1], padding: 'valid', activation: 'relu', data_format: 'channels_first', use_bias: true }, ['c']],
        ['Functional', 'sub', { layers: [] }, ['c']],
        ['Add', 'sum', {}, ['cf', 'sub']],
      ],
      ['sum'],
    );
    const cp2 = memoryKeras(cfg2, { c: { kernel: [1, 1, 2, 3], bias: [3] }, cf: { kernel: [1, 1, 3, 3], bias: [3] } });
    const net2 = kerasToNetwork(cp2).network;
    assert.deepEqual(group(net2, 'c').visible?.map((v) => v.reason), ['feeds cf (Conv2D): data_format channels_first is not supported', 'feeds sub (Functional): nested models are not looked into']);
    assert.equal(layerReport(net2).c.balanceable, 0);
  });

  it('a quantized kernel leaves its layer out; ReLU without a cap is a (leaky) ReLU', () => {
    const cfg = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 3] }, []],
        ['Dense', 'a', { units: 4, activation: 'linear', use_bias: true }, ['x']],
        ['ReLU', 'r', { max_value: null, negative_slope: 0.1, threshold: 0 }, ['a']],
        ['Dense', 'q', { units: 2, activation: 'linear', use_bias: true }, ['r']],
      ],
      ['q'],
    );
    const cp = memoryKeras(cfg, { a: { kernel: [3, 4], bias: [4] }, q: { kernel: [4, 2], bias: [2] } });
    const k = cp.tensors.find((t) => t.name === 'q/kernel')!;
    k.dtype = 'int8';
    delete k.decoded;
    const { network: net } = kerasToNetwork(cp);
    assert.deepEqual(group(net, 'a').activation, { kind: 'bilu', neg: 0.1, pos: 1, name: 'leaky_relu' });
    assert.match(layerReport(net).a.reasons[0], /feeds q \(Dense\): its kernel is stored as int8/);
  });

  it('errors name the file: a layer reading a layer that does not exist', () => {
    const cfg = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 3] }, []],
        ['Dense', 'a', { units: 2, activation: 'linear', use_bias: false }, ['ghost']],
      ],
      ['a'],
    );
    const cp = memoryKeras(cfg, { a: { kernel: [3, 2] } });
    assert.throws(() => kerasToNetwork(cp), /^FileError: \/virtual\/model\.keras: layer a reads "ghost", which is not a layer of the model/);
  });

  it('errors name the file: a kernel that does not fit its input', () => {
    const cfg = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 3] }, []],
        ['Dense', 'a', { units: 2, activation: 'linear', use_bias: false }, ['x']],
      ],
      ['a'],
    );
    const cp = memoryKeras(cfg, { a: { kernel: [5, 2] } });
    assert.throws(() => kerasToNetwork(cp), /^FileError: \/virtual\/model\.keras: layer a expects 5 inputs; x provides 3/);
  });
});

/** Balancing the network changes weights but not what the (engine's) network computes. */
function checkBalancePreservesFunction(net: Network): void {
  const problem = compile(net, lp(2));
  assert.ok(problem.nVars > 0);
  const result = balance(problem);
  const changed = scaledTensors(problem, result.x);
  const balanced = { ...net, tensors: net.tensors.map((t) => changed.get(t.name) ?? t) };
  assert.ok(compareFunctions(net, balanced).maxRelative <= 1e-5);
  assert.ok(analyze(compile(balanced, lp(2))).maxRelativeDeficit <= 2e-6);
  assert.ok(net.tensors.some((t) => changed.has(t.name) && tensorValues(changed.get(t.name)!).some((v, i) => v !== tensorValues(t)[i])));
}
