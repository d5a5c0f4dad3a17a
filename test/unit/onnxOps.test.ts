// The ONNX builder operator by operator, on small files PyTorch's exporter wrote
// (test/fixtures/ops/generate.py): which units pass each operator, and that the balanced copy
// computes PyTorch's output in onnxruntime. Also the shared initializer the exporter makes of
// identical tensors, the nn.RNN zero initial state, and shapes the rules cannot tell.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile, type Problem } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { entryBytesEqual, bytesOf, loadTensor } from '../../server/src/formats/core/checkpoint';
import { onnxFormat } from '../../server/src/formats/onnx/format';
import { GraphView } from '../../server/src/formats/onnx/graphView';
import { onnxStructure } from '../../server/src/formats/onnx/reader';
import { onnxRuntime, runOnnx } from '../../server/src/formats/onnx/verify';
import { scratchDir } from '../support/scratch';

const OPS = join(__dirname, '..', 'fixtures', 'ops');
const tmp = scratchDir('synbal-ops-');
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Io {
  input_shape: number[];
  input: number[];
  output_shape: number[];
  output: number[];
}

function open(name: string) {
  const cp = onnxFormat.open(join(OPS, `${name}.onnx`));
  const problem = compile(onnxFormat.toNetwork(cp, {}).network, lp(2));
  return { cp, problem };
}

/** Per group name: balanceable units / size, and the reasons of the rest. */
function groups(problem: Problem): Map<string, { ok: number; size: number; reasons: string[] }> {
  const out = new Map<string, { ok: number; size: number; reasons: string[] }>();
  problem.network.groups.forEach((g, gi) => {
    const units = problem.units.slice(problem.groupOffset[gi], problem.groupOffset[gi] + g.size);
    out.set(g.name, { ok: units.filter((u) => u.status === 'balanceable').length, size: g.size, reasons: [...new Set(units.flatMap((u) => (u.reason ? [u.reason] : [])))] });
  });
  return out;
}

/** Balances, writes, runs the copy in onnxruntime: its largest difference from PyTorch's output, relative to the output's scale. */
async function balancedRun(name: string): Promise<{ difference: number; rBefore: number; rAfter: number; written: string }> {
  const { cp, problem } = open(name);
  const r = balance(problem, { tolerance: 1e-9 });
  const written = join(tmp, `${name}.balanced.onnx`);
  onnxFormat.write(cp, scaledTensors(problem, r.x), written);
  const io = JSON.parse(readFileSync(join(OPS, `${name}.io.json`), 'utf8')) as Io;
  const ort = await onnxRuntime();
  const got = (await runOnnx(written, { input: new ort.Tensor('float32', Float32Array.from(io.input), io.input_shape) })).get('output')!;
  let scale = 0;
  let worst = 0;
  io.output.forEach((v, i) => {
    scale = Math.max(scale, Math.abs(v));
    worst = Math.max(worst, Math.abs(got[i] - v));
  });
  return { difference: worst / scale, rBefore: r.RBefore, rAfter: r.RAfter, written };
}

describe('operators a positive per-channel scale passes, as PyTorch exports them', () => {
  const passing: [string, string][] = [
    ['op_resize_nearest', 'Resize (nearest)'],
    ['op_resize_linear', 'Resize (linear)'],
    // Cubic interpolation is linear in the values too (fixed weights, some negative): it commutes.
    ['op_resize_cubic', 'Resize (cubic)'],
    ['op_mul_scalar', 'Mul by a constant number'],
    ['op_mul_channel', 'Mul by a constant per channel'],
    ['op_pad_reflect', 'Pad (reflect), amounts folded from ConstantOfShape/Concat/Reshape/Slice/Transpose'],
    ['op_pad_zero', 'Pad (constant 0), amounts folded likewise'],
    ['op_global_avg', 'ReduceMean over the spatial axes'],
    ['op_space_to_depth', 'PixelUnshuffle (Reshape → Transpose → Reshape: r² contiguous channels per unit)'],
  ];
  for (const [name, what] of passing) {
    it(`${what}: the first conv's 4 units are balanceable and the balanced copy computes PyTorch's output`, async () => {
      const g = groups(open(name).problem).get('/a/Conv')!;
      assert.deepEqual([g.ok, g.size, g.reasons], [4, 4, []]);
      const r = await balancedRun(name);
      assert.ok(r.rAfter < r.rBefore, `${name}: R did not fall`);
      assert.ok(r.difference < 1e-5, `${name}: ${r.difference}`);
    });
  }

  it('DepthToSpace (PixelShuffle) is a barrier that says why, and the file still balances around it', async () => {
    const gs = groups(open('op_depth_to_space').problem);
    const a = gs.get('/a/Conv')!;
    assert.equal(a.ok, 0);
    assert.match(a.reasons.join(), /DepthToSpace.*r² input channels, which would have to share one scale/);
    const r = await balancedRun('op_depth_to_space');
    assert.ok(r.difference < 1e-5);
  });
});

describe('shared initializers (PyTorch deduplicates identical tensors)', () => {
  it('three zero conv biases stored once, read through Identity nodes: every layer balanceable', () => {
    const { cp } = open('op_shared_bias');
    const graph = onnxStructure(cp).model.graph;
    const identities = graph.nodes.filter((n) => n.opType === 'Identity');
    assert.ok(identities.length >= 1, 'the exporter shares the bias through Identity nodes');
    const gs = groups(open('op_shared_bias').problem);
    assert.deepEqual([gs.get('/a/Conv')!.ok, gs.get('/b/Conv')!.ok], [4, 4]);
  });

  it('the writer gives each scaled use an initializer of its own and leaves the shared one, and every other tensor, as it was', async () => {
    const { cp } = open('op_shared_bias');
    const r = await balancedRun('op_shared_bias');
    assert.ok(r.difference < 1e-5, String(r.difference));
    const back = onnxFormat.open(r.written);
    const before = onnxStructure(cp).model.graph;
    const afterGraph = onnxStructure(back).model.graph;
    const added = back.tensors.filter((t) => !cp.tensors.some((o) => o.name === t.name));
    assert.ok(added.length >= 1 && added.every((t) => /\.synbal_use\d+_\d+$/.test(t.name)), added.map((t) => t.name).join());
    // The shared tensor (read by several nodes) is unchanged; each new one is read by exactly one node.
    const readers = (g: typeof afterGraph, v: string) => g.nodes.filter((n) => n.inputs.includes(v)).length;
    for (const t of cp.tensors) {
      if (readers(before, t.name) > 1) assert.ok(entryBytesEqual(back.tensors.find((x) => x.name === t.name)!, bytesOf(loadTensor(t))), `${t.name} changed`);
    }
    for (const t of added) assert.equal(readers(afterGraph, t.name), 1);
    // Same nodes, same order; only inputs that now read a new initializer differ.
    assert.deepEqual(afterGraph.nodes.map((n) => n.opType), before.nodes.map((n) => n.opType));
    afterGraph.nodes.forEach((n, i) => n.inputs.forEach((v, k) => {
      if (v !== before.nodes[i].inputs[k]) assert.ok(added.some((t) => t.name === v), `${v} replaced ${before.nodes[i].inputs[k]}`);
    }));
    // Read again, the copy has no shared weights left to report.
    const again = groups(compile(onnxFormat.toNetwork(back, {}).network, lp(2)));
    assert.deepEqual([again.get('/a/Conv')!.ok, again.get('/b/Conv')!.ok], [4, 4]);
  });
});

describe('nn.RNN exported without an initial state', () => {
  it('h0 = Expand of a zero constant scales with anything: the 8 recurrent units are balanceable and the copy runs', async () => {
    const gs = groups(open('op_rnn_zero_h0').problem);
    assert.deepEqual([gs.get('/rnn/RNN')!.ok, gs.get('/rnn/RNN')!.size], [8, 8]);
    const r = await balancedRun('op_rnn_zero_h0');
    assert.ok(r.rAfter < r.rBefore);
    assert.ok(r.difference < 1e-5, String(r.difference));
  });
});

describe('shapes the rules cannot tell', () => {
  it('an Add with one side of unknown shape takes the other side\'s; an unflatten passes; both convs balanceable', async () => {
    const { cp, problem } = open('op_add_unknown');
    const s = onnxStructure(cp);
    const view = new GraphView(cp.path, s, s.model.graph);
    const resize = s.model.graph.nodes.find((n) => n.opType === 'Resize')!;
    const add = s.model.graph.nodes.find((n) => n.opType === 'Add')!;
    assert.equal(view.dims.get(resize.outputs[0]), undefined, 'the resize\'s sizes are computed at run time');
    assert.equal(view.dims.get(add.outputs[0])?.length, 4);
    const gs = groups(problem);
    assert.deepEqual([gs.get('/a/Conv')!.ok, gs.get('/b/Conv')!.ok], [4, 4]);
    const r = await balancedRun('op_add_unknown');
    assert.ok(r.difference < 1e-5, String(r.difference));
  });
});
