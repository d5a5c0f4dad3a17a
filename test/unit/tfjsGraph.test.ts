// TensorFlow.js graph models (hand-built node lists in test/fixtures/tfjs/generate.mjs, run by
// tfjs 4.22.0's GraphModel for the reference outputs): fused ops, depthwise convolutions,
// AddV2 residuals and Relu6 as a network; forward pass, balance → write → re-open.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { forward } from '../../server/src/engine/forward';
import type { Network } from '../../server/src/engine/network';
import { lp } from '../../server/src/engine/regularizer';
import { compareFunctions } from '../../server/src/engine/verify';
import { bytesOf, loadTensor } from '../../server/src/formats/core/checkpoint';
import { tfjsFormat } from '../../server/src/formats/tfjs/index';
import { tfjsToNetwork } from '../../server/src/formats/tfjs/network';
import { scratchDir } from '../support/scratch';

const FIX = join(__dirname, '..', 'fixtures', 'tfjs');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function scratch(model: string): { dir: string; path: string } {
  const dir = scratchDir('synbal-tfjs-graph-test-');
  dirs.push(dir);
  const json = JSON.parse(readFileSync(join(FIX, `${model}.json`), 'utf8'));
  copyFileSync(join(FIX, `${model}.json`), join(dir, `${model}.json`));
  for (const g of json.weightsManifest) for (const p of g.paths) copyFileSync(join(FIX, p), join(dir, p));
  return { dir, path: join(dir, `${model}.json`) };
}

/** Channels-last [..spatial, C] → the engine's unit-major [c·S + s]. */
function unitMajor(values: readonly number[], C: number): Float64Array {
  const S = values.length / C;
  const out = new Float64Array(values.length);
  for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) out[c * S + s] = values[s * C + c];
  return out;
}

function scaledError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    err = Math.max(err, Math.abs(a[i] - b[i]));
  }
  return err / scale;
}

function checkReference(net: Network, model: string): void {
  const ref = JSON.parse(readFileSync(join(FIX, `${model}.io.json`), 'utf8')) as { input_shape: number[]; cases: { input: number[]; output: number[] }[] };
  const inG = net.groups.find((g) => g.role === 'input')!;
  const outG = net.groups.find((g) => g.role === 'output')!;
  for (const c of ref.cases) {
    const y = forward(net, new Map([[inG.name, [unitMajor(c.input, inG.size)]]])).get(outG.name)![0];
    const want = unitMajor(c.output, outG.size);
    // tfjs computes in float32: outputs near zero carry its rounding, so errors are measured
    // against the output's scale.
    assert.ok(scaledError(y, want) <= 1e-5, `${model}: ${scaledError(y, want)} engine ${Array.from(y).slice(0, 8)} vs tfjs ${Array.from(want).slice(0, 8)}`);
  }
}

function layerReport(net: Network) {
  const rep = analyze(compile(net, lp(2)));
  return Object.fromEntries(rep.layers.map((l) => [l.name, { balanceable: l.balanceable, units: l.units, reasons: l.reasons.map((r) => r.reason) }]));
}

describe('TF.js graph models as networks', () => {
  it('graph_cnn: _FusedConv2D (BiasAdd, Relu), depthwise stride 2, AddV2 residual; forward pass = GraphModel.predict', () => {
    const cp = tfjsFormat.open(join(FIX, 'graph_cnn.json'));
    const { network: net, notes } = tfjsToNetwork(cp);
    assert.match(notes[0], /TensorFlow\.js graph model/);
    assert.deepEqual(net.groups.map((g) => [g.name, g.role, g.size, g.activation?.name]), [
      ['x', 'input', 3, undefined], ['c1', 'hidden', 6, 'relu'], ['dw', 'hidden', 6, 'relu'], ['pw', 'hidden', 6, 'identity'], ['res', 'hidden', 6, 'relu'], ['out', 'output', 4, 'identity'],
    ]);
    assert.deepEqual(net.groups.find((g) => g.name === 'dw')!.spatial, [4, 4]);
    const rep = layerReport(net);
    assert.equal(rep.c1.balanceable, 6);
    checkReference(net, 'graph_cnn');
  });

  it('graph_mlp: _FusedMatMul, MatMul + BiasAdd, Relu6 not homogeneous, Add as a bias', () => {
    const { network: net } = tfjsToNetwork(tfjsFormat.open(join(FIX, 'graph_mlp.json')));
    const rep = layerReport(net);
    assert.equal(rep.h1.balanceable, 8);
    assert.deepEqual(rep.h2, { balanceable: 0, units: 7, reasons: ['activation relu6 is not positively homogeneous'] });
    assert.equal(rep.h3.balanceable, 6);
    checkReference(net, 'graph_mlp');
  });

  for (const model of ['graph_cnn', 'graph_mlp']) {
    it(`${model}: balance, write, re-open — same function, balanced`, () => {
      const { dir, path } = scratch(model);
      const cp = tfjsFormat.open(path);
      const net = tfjsToNetwork(cp).network;
      const problem = compile(net, lp(2));
      const result = balance(problem);
      const changed = scaledTensors(problem, result.x);
      assert.ok(changed.size > 0);
      const target = join(dir, 'out.json');
      tfjsFormat.write(cp, changed, target);
      const cp2 = tfjsFormat.open(target);
      for (const e of cp.tensors) {
        const a = bytesOf(loadTensor(e));
        const b = bytesOf(loadTensor(cp2.tensors.find((t) => t.name === e.name)!));
        if (changed.has(e.name)) assert.ok(b.equals(bytesOf(changed.get(e.name)!)), e.name);
        else assert.ok(a.equals(b), `${e.name} unchanged`);
      }
      const net2 = tfjsToNetwork(cp2).network;
      assert.ok(compareFunctions(net, net2).maxRelative <= 1e-5);
      checkReference(net2, model);
      const afterRep = analyze(compile(net2, lp(2)));
      assert.ok(afterRep.maxRelativeDeficit <= 1e-6, `deficit ${afterRep.maxRelativeDeficit}`);
      assert.ok(afterRep.R < analyze(compile(net, lp(2))).R);
    });
  }

  it('an op the builder does not model is a barrier: the units feeding it stay fixed, the file is still read', () => {
    const { path } = scratch('graph_mlp');
    const j = JSON.parse(readFileSync(path, 'utf8'));
    j.modelTopology.node.find((n: { name: string }) => n.name === 'h2_relu6').op = 'Erf';
    writeFileSync(path, JSON.stringify(j));
    const rep = layerReport(tfjsToNetwork(tfjsFormat.open(path)).network);
    assert.deepEqual(rep.h2.reasons, ["feeds Erf (node 'h2_relu6'), which this tool does not model"]);
    assert.equal(rep.h1.balanceable, 8);
    assert.equal(rep.h3.balanceable, 6);
  });
});
