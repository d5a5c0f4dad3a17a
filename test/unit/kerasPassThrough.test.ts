// Keras layers that pass a positive per-channel scale through, added for third-party models:
// UpSampling2D (interpolation commutes with the scale) and a Flatten of a concatenation of
// 1×1 maps (InceptionV3's head after global pooling with keepdims).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { compile } from '../../server/src/engine/compile';
import type { Network } from '../../server/src/engine/network';
import { lp } from '../../server/src/engine/regularizer';
import { kerasToNetwork } from '../../server/src/formats/keras/network';
import { functionalConfig, memoryKeras } from '../fixtures/keras/helpers';

function layerReport(net: Network) {
  const rep = analyze(compile(net, lp(2)), undefined, { skipPredictions: true });
  return Object.fromEntries(rep.layers.map((l) => [l.name, { balanceable: l.balanceable, units: l.units, reasons: l.reasons.map((r) => r.reason) }]));
}

describe('Keras pass-through layers', () => {
  it('UpSampling2D: the convolution before it stays balanceable; forward passes say they do not compute it', () => {
    const cfg = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 4, 4, 2] }, []],
        ['Conv2D', 'a', { filters: 3, kernel_size: [3, 3], strides: [1, 1], padding: 'same', activation: 'relu', use_bias: true }, ['x']],
        ['UpSampling2D', 'up', { size: [2, 2], interpolation: 'bilinear' }, ['a']],
        ['Conv2D', 'b', { filters: 2, kernel_size: [3, 3], strides: [1, 1], padding: 'same', activation: 'linear', use_bias: true }, ['up']],
      ],
      ['b'],
    );
    const { network: net, notes } = kerasToNetwork(memoryKeras(cfg, { a: { kernel: [3, 3, 2, 3], bias: [3] }, b: { kernel: [3, 3, 3, 2], bias: [2] } }));
    assert.deepEqual(net.groups.find((g) => g.name === 'up')!.spatial, [8, 8]);
    assert.equal(layerReport(net).a.balanceable, 3);
    assert.ok(notes.some((n) => /forward passes of this network are not exact: forward passes do not compute up \(UpSampling2D\)/.test(n)), notes.join('\n'));
  });

  it('Flatten of a concatenation of 1×1 maps reads the parts in order', () => {
    const cfg = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 4, 4, 2] }, []],
        ['Conv2D', 'a', { filters: 3, kernel_size: [1, 1], strides: [1, 1], padding: 'valid', activation: 'relu', use_bias: true }, ['x']],
        ['Conv2D', 'b', { filters: 2, kernel_size: [1, 1], strides: [1, 1], padding: 'valid', activation: 'relu', use_bias: true }, ['x']],
        ['Concatenate', 'cat', { axis: -1 }, ['a', 'b']],
        ['AveragePooling2D', 'pool', { pool_size: [4, 4], strides: [4, 4], padding: 'valid' }, ['cat']],
        ['Flatten', 'flat', {}, ['pool']],
        ['Dense', 'y', { units: 2, activation: 'linear', use_bias: true }, ['flat']],
      ],
      ['y'],
    );
    const { network: net } = kerasToNetwork(memoryKeras(cfg, { a: { kernel: [1, 1, 2, 3], bias: [3] }, b: { kernel: [1, 1, 2, 2], bias: [2] }, y: { kernel: [5, 2], bias: [2] } }));
    const rep = layerReport(net);
    assert.deepEqual([rep.a.balanceable, rep.b.balanceable], [3, 2]);
    assert.deepEqual(net.connections.filter((c) => c.to === 'y' && c.kind === 'dense').map((c) => [c.from, c.source?.start, c.source?.length]), [['pool/a', 0, 3], ['pool/b', 3, 2]]);
  });
});

describe('Keras sizes inferred from the other side', () => {
  it('an Add whose one side is an opaque layer of unknown size takes the other side\'s channels', () => {
    const cfg = functionalConfig(
      [
        ['InputLayer', 'x', { batch_input_shape: [null, 4] }, []],
        ['Dense', 'a', { units: 5, activation: 'relu', use_bias: true }, ['x']],
        ['Dense', 'b', { units: 5, activation: 'linear', use_bias: true }, ['a']],
        ['Lambda', 'weird', { function: 'x' }, ['x']],
        ['Add', 'sum', {}, ['b', 'weird']],
        ['Dense', 'y', { units: 2, activation: 'linear', use_bias: true }, ['sum']],
      ],
      ['y'],
    );
    const { network: net } = kerasToNetwork(memoryKeras(cfg, { a: { kernel: [4, 5], bias: [5] }, b: { kernel: [5, 5], bias: [5] }, y: { kernel: [5, 2], bias: [2] } }));
    assert.equal(net.groups.find((g) => g.name === 'weird')?.size, 5);
    assert.equal(layerReport(net).a.balanceable, 5);
  });
});
