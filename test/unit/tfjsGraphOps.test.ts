// The TF.js graph builder's operator catalogue on hand-built graph models
// (test/support/tfjsGraphModels.ts): ops that pass a positive per-channel scale through keep
// the units before them balanceable, ops it does not model are barriers with the op named, and
// a balanced, written copy computes what the original does in TF.js's own GraphModel.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { tfjsFormat } from '../../server/src/formats/tfjs/index';
import { tfjsToNetwork } from '../../server/src/formats/tfjs/network';
import { attr, GraphBuilder, randomInput, runGraphModel } from '../support/tfjsGraphModels';

type Report = Record<string, { balanceable: number; units: number; reasons: string[] }>;

function report(path: string): { rep: Report; notes: string[] } {
  const { network, notes } = tfjsToNetwork(tfjsFormat.open(path));
  const rep = analyze(compile(network, lp(2)), undefined, { skipPredictions: true });
  return { rep: Object.fromEntries(rep.layers.map((l) => [l.name, { balanceable: l.balanceable, units: l.units, reasons: l.reasons.map((r) => r.reason) }])), notes };
}

/** Balances the model, writes it, and runs both files in TF.js: the outputs must agree. */
async function balancedAgrees(path: string, inputs: Record<string, { shape: number[]; data: Float32Array }>): Promise<{ changed: string[]; RBefore: number; RAfter: number }> {
  const cp = tfjsFormat.open(path);
  const problem = compile(tfjsToNetwork(cp).network, lp(2));
  const result = balance(problem);
  const changed = scaledTensors(problem, result.x);
  assert.ok(changed.size > 0, 'something to balance');
  const target = join(dirname(path), 'balanced.json');
  tfjsFormat.write(cp, changed, target);
  const a = await runGraphModel(path, inputs);
  const b = await runGraphModel(target, inputs);
  assert.equal(a.length, b.length);
  for (let o = 0; o < a.length; o++) {
    let scale = 0;
    let err = 0;
    for (let i = 0; i < a[o].length; i++) {
      scale = Math.max(scale, Math.abs(a[o][i]));
      err = Math.max(err, Math.abs(a[o][i] - b[o][i]));
    }
    assert.ok(err <= 1e-4 * scale, `output ${o}: max error ${err} at scale ${scale}`);
  }
  // The balanced copy is balanced: the engine reads it back with no deficit left.
  const again = analyze(compile(tfjsToNetwork(tfjsFormat.open(target)).network, lp(2)), undefined, { skipPredictions: true });
  assert.ok(again.maxRelativeDeficit <= 1e-5, `deficit ${again.maxRelativeDeficit}`);
  return { changed: [...changed.keys()], RBefore: result.RBefore, RAfter: result.RAfter };
}

const PADS = (p: number) => [0, 0, p, p, p, p, 0, 0];

describe('TF.js graph ops that pass a scale through', () => {
  it('MaxPool, Pad, MirrorPad, AvgPool, Identity, Cast, Mean: the convolutions before them balance', async () => {
    const g = new GraphBuilder(11);
    const x = g.input('x', [8, 8, 3]);
    const c1 = g.conv('c1', x, 3, 3, 4, { fused: ['Relu'] });
    const p1 = g.pool('p1', 'MaxPool', c1, 2);
    const pad = g.op('pad', 'Pad', [p1, g.ints('pad/paddings', [4, 2], PADS(1))], { Tpaddings: attr.type('DT_INT32') });
    const c2 = g.conv('c2', pad, 3, 4, 5, { padding: 'VALID', fused: ['Relu'] });
    const mp = g.op('mirror', 'MirrorPad', [c2, g.ints('mirror/paddings', [4, 2], PADS(1))], { mode: attr.s('REFLECT'), Tpaddings: attr.type('DT_INT32') });
    const c3 = g.conv('c3', mp, 3, 5, 6, { padding: 'VALID', fused: ['Relu'] });
    const ap = g.pool('ap', 'AvgPool', c3, 2);
    const id = g.op('id', 'Identity', [ap]);
    const cast = g.op('cast', 'Cast', [id], { SrcT: attr.type(), DstT: attr.type(), Truncate: attr.b(false) });
    const mean = g.op('mean', 'Mean', [cast, g.ints('mean/axes', [2], [1, 2])], { keep_dims: attr.b(false), Tidx: attr.type('DT_INT32') });
    g.dense('out', mean, 6, 3);
    const path = g.write('pool_pad');
    const { rep } = report(path);
    assert.deepEqual([rep.c1.balanceable, rep.c2.balanceable, rep.c3.balanceable], [4, 5, 6]);
    const r = await balancedAgrees(path, { x: { shape: [8, 8, 3], data: randomInput(192) } });
    assert.ok(r.RAfter < r.RBefore);
    assert.ok(r.changed.includes('c1/kernel') && r.changed.includes('c3/bias'));
  });

  it('ConcatV2 by parts, ResizeBilinear and ResizeNearestNeighbor over them', async () => {
    const g = new GraphBuilder(5);
    const x = g.input('x', [6, 6, 3]);
    const a = g.conv('a', x, 1, 3, 2, { fused: ['Relu'] });
    const b = g.conv('b', x, 3, 3, 3, { fused: ['Relu'] });
    const cat = g.op('cat', 'ConcatV2', [a, b, g.ints('cat/axis', [], [3])], { N: attr.i(2), Tidx: attr.type('DT_INT32') });
    const rz = g.op('rz', 'ResizeBilinear', [cat, g.ints('rz/size', [2], [12, 12])], { align_corners: attr.b(false), half_pixel_centers: attr.b(true) });
    const c = g.conv('c', rz, 3, 5, 4, { stride: 2, fused: ['Relu'] });
    const rn = g.op('rn', 'ResizeNearestNeighbor', [c, g.ints('rn/size', [2], [8, 8])], { align_corners: attr.b(false), half_pixel_centers: attr.b(false) });
    g.conv('d', rn, 1, 4, 2);
    const path = g.write('concat_resize');
    const { rep, notes } = report(path);
    assert.deepEqual([rep.a.balanceable, rep.b.balanceable, rep.c.balanceable], [2, 3, 4]);
    assert.ok(notes.some((n) => /forward passes of this network are not exact: .*ResizeBilinear/.test(n)), notes.join('\n'));
    await balancedAgrees(path, { x: { shape: [6, 6, 3], data: randomInput(108) } });
  });

  it('PReLU (fused and unfused), Mul by a constant, Maximum(x, 0): balanceable activations', async () => {
    const g = new GraphBuilder(7);
    const x = g.input('x', [5, 5, 2]);
    const c1 = g.conv('c1', x, 3, 2, 4, { fused: ['Prelu'] });
    const mul = g.op('mul', 'Mul', [c1, g.constant('mul/c', [4], [0.5, 2, 3, 0.25])]);
    const c2 = g.conv('c2', mul, 3, 4, 3);
    const ba = g.op('c2_bias', 'BiasAdd', [c2, g.constant('c2/bias', [3])], { data_format: attr.s('NHWC') });
    const mx = g.op('max', 'Maximum', [ba, g.constant('max/zero', [], [0])]);
    const c3 = g.conv('c3', mx, 1, 3, 3);
    const pr = g.op('prelu', 'Prelu', [c3, g.constant('prelu/alpha', [3], [0.1, 0.2, 0.3])]);
    const mean = g.op('mean', 'Mean', [pr, g.ints('mean/axes', [2], [1, 2])], { keep_dims: attr.b(false), Tidx: attr.type('DT_INT32') });
    g.dense('out', mean, 3, 2);
    const path = g.write('prelu_mul');
    const { rep } = report(path);
    assert.deepEqual([rep.c1.balanceable, rep.c2.balanceable, rep.c3.balanceable], [4, 3, 3]);
    await balancedAgrees(path, { x: { shape: [5, 5, 2], data: randomInput(50) } });
  });

  it('unknown spatial sizes ([null, null, null, 3]) do not stop the build; a residual AddV2 after them', async () => {
    const g = new GraphBuilder(3);
    const x = g.input('x', [-1, -1, 3]);
    const c1 = g.conv('c1', x, 3, 3, 4, { fused: ['Relu'] });
    const p = g.pool('p', 'MaxPool', c1, 2);
    const c2 = g.conv('c2', p, 3, 4, 4, { fused: ['Relu'] });
    const c3 = g.conv('c3', c2, 1, 4, 4, { fused: [] });
    const add = g.op('add', 'AddV2', [c3, p]);
    const r = g.op('relu', 'Relu', [add]);
    const mean = g.op('mean', 'Mean', [r, g.ints('mean/axes', [2], [1, 2])], { keep_dims: attr.b(false), Tidx: attr.type('DT_INT32') });
    g.dense('out', mean, 4, 2);
    const path = g.write('unknown_size');
    const { rep, notes } = report(path);
    assert.equal(rep.c2.balanceable, 4);
    assert.ok(notes.some((n) => /spatial size at c1 is unknown/.test(n)), notes.join('\n'));
    await balancedAgrees(path, { x: { shape: [8, 8, 3], data: randomInput(192) } });
  });
});

describe('TF.js graph ops the builder does not model are barriers', () => {
  it('Sub and ReLU6 keep the units feeding them fixed with the reason; the rest balances', async () => {
    const g = new GraphBuilder(9);
    const x = g.input('x', [4, 4, 2]);
    const c1 = g.conv('c1', x, 3, 2, 3, { fused: ['Relu'] });
    const sub = g.op('sub', 'Sub', [c1, g.constant('sub/c', [3])]);
    const c2 = g.conv('c2', sub, 3, 3, 4, { fused: ['Relu'] });
    const c3 = g.conv('c3', c2, 1, 4, 4, { fused: ['Relu6'] });
    const c4 = g.conv('c4', c3, 3, 4, 3, { fused: ['Relu'] });
    const mean = g.op('mean', 'Mean', [c4, g.ints('mean/axes', [2], [1, 2])], { keep_dims: attr.b(false), Tidx: attr.type('DT_INT32') });
    g.dense('out', mean, 3, 2);
    const path = g.write('barriers');
    const { rep } = report(path);
    assert.deepEqual(rep.c1, { balanceable: 0, units: 3, reasons: ["feeds Sub (node 'sub'): it subtracts, which the network does not model (a difference is not a sum of scaled units)"] });
    assert.equal(rep.c2.balanceable, 4);
    assert.deepEqual(rep.c3.reasons, ['activation relu6 is not positively homogeneous']);
    assert.equal(rep.c4.balanceable, 3);
    await balancedAgrees(path, { x: { shape: [4, 4, 2], data: randomInput(32) } });
  });

  it('SparseToDense, a while loop, a scalar input and an unknown op: read, the rest balanced, never one whole-file error', () => {
    const g = new GraphBuilder(13);
    const x = g.input('x', [4, 4, 2]);
    g.nodes.push({ name: 'scale', op: 'Placeholder', attr: { shape: { shape: { dim: [] } }, dtype: attr.type() } });
    const c0 = g.conv('c0', x, 3, 2, 3, { fused: ['Relu'] });
    const c1 = g.conv('c1', c0, 3, 3, 3, { fused: ['Relu'] });
    const std = g.op('std', 'SparseToDense', [g.ints('std/idx', [1], [0]), g.ints('std/shape', [1], [3]), c1, g.constant('std/default', [], [0])]);
    const c2 = g.conv('c2', std, 1, 3, 4, { fused: ['Relu'] });
    // A while loop: Enter → Merge ⇄ NextIteration, Switch, Exit.
    g.op('enter', 'Enter', [c2], { frame_name: attr.s('loop') });
    g.op('merge', 'Merge', ['enter', 'next']);
    g.op('cond', 'LoopCond', [g.op('less', 'Less', ['merge', g.constant('limit', [], [1])])]);
    g.op('switch', 'Switch', ['merge', 'cond']);
    g.op('next', 'NextIteration', ['switch:1']);
    const exit = g.op('exit', 'Exit', ['switch']);
    const c3 = g.conv('c3', exit, 1, 4, 3, { fused: ['Relu'] });
    const mul = g.op('mul', 'Mul', [c3, 'scale']);
    const c4 = g.conv('c4', mul, 1, 3, 3, { fused: ['Relu'] });
    g.op('erf', 'Erf', [c4]);
    const path = g.write('unmodelled');
    const { rep, notes } = report(path);
    assert.equal(rep.c0.balanceable, 3);
    assert.deepEqual(rep.c1.reasons, ["feeds SparseToDense (node 'std'), which this tool does not model"]);
    assert.deepEqual(rep.c2.reasons, ["feeds Enter (node 'enter'): it is part of a while loop, which the builder does not follow"]);
    assert.deepEqual(rep.c3.reasons, ["feeds Mul (node 'mul'): it multiplies two computed values, which is not positively homogeneous of degree 1"]);
    assert.deepEqual(rep.c4.reasons, ["feeds Erf (node 'erf'), which this tool does not model"]);
    assert.ok(notes.some((n) => /back edge/.test(n)), notes.join('\n'));
    assert.ok(notes.some((n) => /input scale: shape \[\]/.test(n)), notes.join('\n'));
    const cp = tfjsFormat.open(path);
    const problem = compile(tfjsToNetwork(cp).network, lp(2));
    const changed = scaledTensors(problem, balance(problem).x);
    assert.deepEqual([...changed.keys()].sort(), ['c0/bias', 'c0/kernel', 'c1/kernel']);
  });
});
