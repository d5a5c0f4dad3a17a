// ONNX end to end: open a real exported model, build its network, balance it, write the copy,
// and check the copy three ways: only the scaled tensors' bytes changed, onnxruntime computes the
// same outputs (and PyTorch's reference outputs), and the copy checks balanced.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile, type Problem } from '../../server/src/engine/compile';
import { maxOf, relativeDeficits, varStats } from '../../server/src/engine/evaluate';
import { lp } from '../../server/src/engine/regularizer';
import type { Checkpoint } from '../../server/src/formats/core/checkpoint';
import { f32, graphProto, modelProto, valueInfo, type NodeSpec, type TensorSpec } from '../../server/src/formats/onnx/encode';
import { onnxFormat } from '../../server/src/formats/onnx/format';
import { onnxRuntime, outputValues, runOnnx, verifyOnnx } from '../../server/src/formats/onnx/verify';
import { onnxToNetwork } from '../../server/src/formats/onnx/network';
import type { Tensor } from '../../server/src/tensor/tensor';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');

interface ManifestEntry {
  name: string;
  format: string;
  network?: string;
  reference?: string;
}
const manifest = JSON.parse(readFileSync(join(MODELS, 'MANIFEST.json'), 'utf8')) as { files: ManifestEntry[] };
const onnxFiles = manifest.files.filter((f) => f.name.endsWith('.onnx'));

const root = scratchDir('synbal-onnx-');
after(() => rmSync(root, { recursive: true, force: true }));
function scratch(): string {
  return mkdtempSync(join(root, 'case-'));
}

interface Balanced {
  cp: Checkpoint;
  problem: Problem;
  changed: Map<string, Tensor>;
  files: string[];
}

function balanceTo(path: string, out: string): Balanced {
  const cp = onnxFormat.open(path);
  const { network } = onnxToNetwork(cp);
  const problem = compile(network, lp(2));
  const result = balance(problem);
  assert.ok(result.converged, `${basename(path)} did not converge`);
  const changed = scaledTensors(problem, result.x);
  const files = onnxFormat.write(cp, changed, out);
  return { cp, problem, changed, files };
}

function maxDeficit(path: string): number {
  const problem = compile(onnxToNetwork(onnxFormat.open(path)).network, lp(2));
  return maxOf(relativeDeficits(problem, varStats(problem, new Float64Array(problem.nVars))));
}

/** Every byte outside the given ranges is equal in the two files. */
function assertSameOutside(a: Buffer, b: Buffer, ranges: { offset: number; byteLength: number }[], what: string): void {
  assert.equal(b.length, a.length, `${what}: size changed`);
  const inside = new Uint8Array(a.length);
  for (const r of ranges) inside.fill(1, r.offset, r.offset + r.byteLength);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !inside[i]) assert.fail(`${what}: byte ${i} changed outside the scaled tensors`);
}

/** Runs a model on the reference inputs; returns the largest difference relative to the output scale. */
async function againstReference(model: string, ref: { input_shape: number[]; cases: { input: unknown; output: unknown }[] }): Promise<number> {
  const ort = await onnxRuntime();
  let worst = 0;
  for (const c of ref.cases) {
    const x = (c.input as number[]).flat(Infinity as 1) as number[];
    const want = (c.output as number[]).flat(Infinity as 1) as number[];
    const out = await runOnnx(model, { input: new ort.Tensor('float32', Float32Array.from(x), ref.input_shape) });
    const got = out.get('output')!;
    const scale = Math.max(...want.map(Math.abs));
    want.forEach((w, i) => (worst = Math.max(worst, Math.abs(got[i] - w) / scale)));
  }
  return worst;
}

describe('balancing every ONNX fixture', () => {
  for (const f of onnxFiles) {
    const runnable = !f.name.includes('bf16');
    it(`${f.name}: only scaled tensors change, the function is kept, the copy is balanced`, async () => {
      const dir = scratch();
      const src = join(MODELS, f.name);
      const out = join(dir, f.name.replace(/\.onnx$/, '.balanced.onnx'));
      const b = balanceTo(src, out);
      assert.ok(b.changed.size > 0, 'something was scaled');

      // Byte identity outside the changed tensors, file by file.
      const byFile = new Map<string, { offset: number; byteLength: number }[]>();
      for (const name of b.changed.keys()) {
        const e = b.cp.tensors.find((t) => t.name === name)!;
        byFile.set(e.file, [...(byFile.get(e.file) ?? []), e]);
      }
      const external = b.files.length > 1;
      if (!external) assertSameOutside(readFileSync(src), readFileSync(out), byFile.get(src) ?? [], f.name);
      else {
        for (const [file, ranges] of byFile) if (file !== src) assertSameOutside(readFileSync(file), readFileSync(b.files[1]), ranges, basename(file));
        // The model file differs only in the location it gives its data.
        const again = onnxFormat.open(out);
        assert.ok(again.tensors.every((t) => t.file === b.files[1]));
      }

      // The reopened copy holds the new values under the same names, dtypes and shapes.
      const again = onnxFormat.open(out);
      assert.deepEqual(again.tensors.map((t) => [t.name, t.dtype, t.shape]), b.cp.tensors.map((t) => [t.name, t.dtype, t.shape]));

      // Balanced to the float floor of its dtype when re-checked.
      const floor = f.name.includes('bf16') ? 2e-2 : f.name.includes('f16') ? 2e-3 : 1e-6;
      assert.ok(maxDeficit(out) <= floor, `max relative deficit ${maxDeficit(out)} after balancing`);

      if (!runnable) return;
      const v = await verifyOnnx(src, out, 3);
      const tol = f.name.includes('f16') ? 1e-2 : 1e-5; // float16 rounds each rescaled weight to 11 bits
      assert.ok(v.maxRelative <= tol, `onnxruntime outputs differ by ${v.maxRelative} (relative)`);
      const refName = f.reference ?? `${f.network}.io.json`;
      if (f.name.includes('f16') || !existsSync(join(MODELS, refName))) return;
      const ref = JSON.parse(readFileSync(join(MODELS, refName), 'utf8'));
      assert.ok((await againstReference(src, ref)) < 1e-5, 'the original matches PyTorch');
      assert.ok((await againstReference(out, ref)) < 1e-5, 'the balanced copy matches PyTorch');
    });
  }

  it('leaves the original untouched and no temporary files behind', () => {
    const dir = scratch();
    const src = join(dir, 'mlp_relu.onnx');
    copyFileSync(join(MODELS, 'mlp_relu.onnx'), src);
    const before = readFileSync(src);
    balanceTo(src, join(dir, 'out.onnx'));
    assert.deepEqual(readFileSync(src), before);
    assert.deepEqual(readdirSync(dir).sort(), ['mlp_relu.onnx', 'out.onnx']);
  });

  it('balances in place with a backup', () => {
    const dir = scratch();
    const src = join(dir, 'm.onnx');
    copyFileSync(join(MODELS, 'mlp_relu.onnx'), src);
    const cp = onnxFormat.open(src);
    const problem = compile(onnxToNetwork(cp).network, lp(2));
    onnxFormat.write(cp, scaledTensors(problem, balance(problem).x), src, { backup: true });
    assert.deepEqual(readFileSync(`${src}.bak`), readFileSync(join(MODELS, 'mlp_relu.onnx')));
    assert.ok(maxDeficit(src) < 1e-6);
  });

  it('writes external data beside the copy, pointing the copy at it, and keeps the original data', async () => {
    const dir = scratch();
    for (const n of ['mlp_relu_external.onnx', 'mlp_relu_external.onnx.data']) copyFileSync(join(MODELS, n), join(dir, n));
    const src = join(dir, 'mlp_relu_external.onnx');
    const data = readFileSync(`${src}.data`);
    const b = balanceTo(src, join(dir, 'sub.onnx'));
    assert.deepEqual(b.files, [join(dir, 'sub.onnx'), join(dir, 'sub.onnx.data')]);
    assert.deepEqual(readFileSync(`${src}.data`), data, 'the original data file is untouched');
    assert.ok((await verifyOnnx(src, join(dir, 'sub.onnx'))).maxRelative < 1e-5);
    // In place: the new data gets a name of its own, so the backup still finds its data.
    const c = balanceTo(src, src);
    assert.ok(c.files[1] !== `${src}.data` && existsSync(c.files[1]));
    assert.deepEqual(readFileSync(`${src}.data`), data);
  });
});

// ---- synthetic graphs: operators the fixtures do not show, checked against onnxruntime ----

let seed = 11;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
function weights(name: string, dims: number[], scale = 1): TensorSpec {
  const n = dims.reduce((a, b) => a * b, 1);
  return { name, dataType: 1, dims, raw: f32(Array.from({ length: n }, () => rand() * scale)) };
}

async function roundTrip(name: string, nodes: NodeSpec[], inits: TensorSpec[], inShape: (number | string)[], outShape: (number | string)[], opset = 13): Promise<{ units: number; balanceable: number; max: number }> {
  const dir = scratch();
  const src = join(dir, `${name}.onnx`);
  writeFileSync(src, modelProto({ nodes, initializers: inits, inputs: [valueInfo('x', 1, inShape)], outputs: [valueInfo('y', 1, outShape)] }, opset));
  const out = join(dir, `${name}.balanced.onnx`);
  const b = balanceTo(src, out);
  const v = await verifyOnnx(src, out, 5);
  assert.ok(v.maxRelative <= 1e-5, `${name}: outputs differ by ${v.maxRelative}`);
  assert.ok(maxDeficit(out) <= 1e-6, `${name}: not balanced after the write`);
  const hidden = b.problem.units.filter((_, i) => b.problem.network.groups[b.problem.unitGroup[i]].role === 'hidden');
  return { units: hidden.length, balanceable: hidden.filter((u) => u.status === 'balanceable').length, max: v.maxRelative };
}

describe('balancing synthetic ONNX graphs, verified by onnxruntime', () => {
  it('MatMul + Add bias, weights through Transpose, Concat of two layers into one', async () => {
    const r = await roundTrip(
      'concat',
      [
        { op: 'MatMul', inputs: ['x', 'wa'], outputs: ['a0'] },
        { op: 'Add', inputs: ['a0', 'ba'], outputs: ['a1'] },
        { op: 'Relu', inputs: ['a1'], outputs: ['a'] },
        { op: 'Transpose', inputs: ['wbT'], outputs: ['wb'], attrs: { perm: { ints: [1, 0] } } },
        { op: 'Gemm', inputs: ['x', 'wb', 'bb'], outputs: ['b0'] },
        { op: 'LeakyRelu', inputs: ['b0'], outputs: ['b'], attrs: { alpha: { f: 0.2 } } },
        { op: 'Concat', inputs: ['a', 'b'], outputs: ['c'], attrs: { axis: { i: 1 } } },
        { op: 'Gemm', inputs: ['c', 'wc', 'bc'], outputs: ['y'], attrs: { transB: { i: 1 } } },
      ],
      [weights('wa', [4, 5]), weights('ba', [5]), weights('wbT', [6, 4]), weights('bb', [6]), weights('wc', [3, 11]), weights('bc', [3])],
      ['N', 4],
      ['N', 3],
    );
    assert.equal(r.balanceable, 11);
  });

  it('Conv → MaxPool → grouped (depthwise) Conv → GlobalAveragePool → Flatten → Gemm', async () => {
    const r = await roundTrip(
      'conv',
      [
        { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['c1'], attrs: { pads: { ints: [1, 1, 1, 1] }, kernel_shape: { ints: [3, 3] } } },
        { op: 'Relu', inputs: ['c1'], outputs: ['r1'] },
        { op: 'MaxPool', inputs: ['r1'], outputs: ['p1'], attrs: { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } } },
        { op: 'Conv', inputs: ['p1', 'w2', 'b2'], outputs: ['c2'], attrs: { group: { i: 4 }, kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } } },
        { op: 'Relu', inputs: ['c2'], outputs: ['r2'] },
        { op: 'GlobalAveragePool', inputs: ['r2'], outputs: ['g'] },
        { op: 'Flatten', inputs: ['g'], outputs: ['f'] },
        { op: 'Gemm', inputs: ['f', 'w3', 'b3'], outputs: ['y'], attrs: { transB: { i: 1 } } },
      ],
      [weights('w1', [4, 2, 3, 3]), weights('b1', [4]), weights('w2', [4, 1, 3, 3]), weights('b2', [4]), weights('w3', [3, 4]), weights('b3', [3])],
      ['N', 2, 6, 6],
      ['N', 3],
    );
    assert.equal(r.balanceable, 8);
  });

  it('a residual Add ties; a Flatten of a conv map feeds BatchNorm1d-style normalization', async () => {
    const r = await roundTrip(
      'resbn',
      [
        { op: 'Conv', inputs: ['x', 'w1'], outputs: ['c1'], attrs: { kernel_shape: { ints: [1, 1] } } },
        { op: 'Relu', inputs: ['c1'], outputs: ['r1'] },
        { op: 'Conv', inputs: ['r1', 'w2', 'b2'], outputs: ['c2'], attrs: { kernel_shape: { ints: [1, 1] } } },
        { op: 'Add', inputs: ['c2', 'r1'], outputs: ['s'] },
        { op: 'Flatten', inputs: ['s'], outputs: ['f'] },
        { op: 'BatchNormalization', inputs: ['f', 'g', 'be', 'mu', 'var'], outputs: ['n'] },
        { op: 'Relu', inputs: ['n'], outputs: ['rn'] },
        { op: 'Gemm', inputs: ['rn', 'w3'], outputs: ['y'], attrs: { transB: { i: 1 } } },
      ],
      [
        weights('w1', [3, 2, 1, 1]),
        weights('w2', [3, 3, 1, 1]),
        weights('b2', [3]),
        weights('g', [12]),
        weights('be', [12]),
        weights('mu', [12]),
        { name: 'var', dataType: 1, dims: [12], raw: f32(Array.from({ length: 12 }, (_, i) => 0.5 + i / 10)) },
        weights('w3', [2, 12]),
      ],
      ['N', 2, 2, 2],
      ['N', 2],
    );
    // Two conv groups of 3, tied into 3 scales; all 6 units balanceable.
    assert.equal(r.balanceable, 6);
  });

  it('float16 weights stored as int32_data varints: re-encoded, lengths fixed, still runs', async () => {
    const half = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeFloatLE(v);
      const x = b.readUInt32LE();
      return ((x >>> 16) & 0x8000) | ((((x >>> 23) & 0xff) - 112) << 10) | ((x >>> 13) & 0x3ff);
    };
    const h = (name: string, dims: number[]): TensorSpec => ({ name, dataType: 10, dims, int32s: Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => half(rand() * 0.9 + (rand() > 0 ? 0.05 : -0.05))) });
    const dir = scratch();
    const src = join(dir, 'half.onnx');
    writeFileSync(
      src,
      modelProto({
        nodes: [
          { op: 'Gemm', inputs: ['x', 'w1', 'b1'], outputs: ['h'], attrs: { transB: { i: 1 } } },
          { op: 'Relu', inputs: ['h'], outputs: ['r'] },
          { op: 'Gemm', inputs: ['r', 'w2'], outputs: ['y'], attrs: { transB: { i: 1 } } },
        ],
        initializers: [h('w1', [6, 4]), h('b1', [6]), { ...h('w2', [3, 6]), unpacked: true }],
        inputs: [valueInfo('x', 10, ['N', 4])],
        outputs: [valueInfo('y', 10, ['N', 3])],
      }),
    );
    const out = join(dir, 'half.balanced.onnx');
    const b = balanceTo(src, out);
    const again = onnxFormat.open(out);
    for (const [name, t] of b.changed) assert.deepEqual(again.tensors.find((e) => e.name === name)!.decoded!.data, t.data);
    assert.ok((await verifyOnnx(src, out)).maxRelative < 1e-2);
    assert.ok(maxDeficit(out) < 2e-3);
  });

  it('weights in unpacked float_data (patched element by element), through Identity and Cast', async () => {
    const unpacked = (name: string, dims: number[]): TensorSpec => ({ ...weights(name, dims), raw: undefined, floats: Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand()), unpacked: true });
    const r = await roundTrip(
      'typed',
      [
        { op: 'Identity', inputs: ['w1s'], outputs: ['w1'] },
        { op: 'Gemm', inputs: ['x', 'w1', 'b1'], outputs: ['h'], attrs: { transB: { i: 1 } } },
        { op: 'Relu', inputs: ['h'], outputs: ['r'] },
        { op: 'Cast', inputs: ['w2s'], outputs: ['w2'], attrs: { to: { i: 1 } } },
        { op: 'Gemm', inputs: ['r', 'w2'], outputs: ['y'], attrs: { transB: { i: 1 } } },
      ],
      [unpacked('w1s', [5, 3]), { name: 'b1', dataType: 1, dims: [5], floats: [0.1, -0.2, 0.3, 0.05, -0.1] }, unpacked('w2s', [2, 5])],
      ['N', 3],
      ['N', 2],
    );
    assert.equal(r.balanceable, 5);
  });

  it('x.view(x.size(0), -1) (Shape → Gather → Concat → Reshape), Pad and AveragePool keep channels apart', async () => {
    const i64 = (name: string, values: number[], dims = [values.length]): TensorSpec => ({ name, dataType: 7, dims, int64s: values });
    const r = await roundTrip(
      'view',
      [
        { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['c1'], attrs: { kernel_shape: { ints: [3, 3] } } },
        { op: 'Relu', inputs: ['c1'], outputs: ['r1'] },
        { op: 'Pad', inputs: ['r1', 'pads'], outputs: ['p1'], attrs: { mode: { s: 'constant' } } },
        { op: 'AveragePool', inputs: ['p1'], outputs: ['a1'], attrs: { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } } },
        { op: 'Shape', inputs: ['a1'], outputs: ['s'] },
        { op: 'Gather', inputs: ['s', 'zero'], outputs: ['n'], attrs: { axis: { i: 0 } } },
        { op: 'Unsqueeze', inputs: ['n', 'axes'], outputs: ['n1'] },
        { op: 'Concat', inputs: ['n1', 'minus1'], outputs: ['shape'], attrs: { axis: { i: 0 } } },
        { op: 'Reshape', inputs: ['a1', 'shape'], outputs: ['f'] },
        { op: 'Gemm', inputs: ['f', 'w2', 'b2'], outputs: ['y'], attrs: { transB: { i: 1 } } },
      ],
      [weights('w1', [3, 2, 3, 3]), weights('b1', [3]), i64('pads', [0, 0, 1, 1, 0, 0, 1, 1]), i64('zero', [0], []), i64('axes', [0]), i64('minus1', [-1]), weights('w2', [2, 12]), weights('b2', [2])],
      ['N', 2, 4, 4],
      ['N', 2],
    );
    assert.equal(r.balanceable, 3);
  });

  it('LayerNorm written out (ReduceMean … Div) then γ, β: the affine units balance against the next layer', async () => {
    const r = await roundTrip(
      'layernorm',
      [
        { op: 'Gemm', inputs: ['x', 'w1', 'b1'], outputs: ['h'], attrs: { transB: { i: 1 } } },
        { op: 'ReduceMean', inputs: ['h'], outputs: ['m'], attrs: { axes: { ints: [-1] } } },
        { op: 'Sub', inputs: ['h', 'm'], outputs: ['d'] },
        { op: 'Mul', inputs: ['d', 'd'], outputs: ['d2'] },
        { op: 'ReduceMean', inputs: ['d2'], outputs: ['v'], attrs: { axes: { ints: [-1] } } },
        { op: 'Add', inputs: ['v', 'eps'], outputs: ['ve'] },
        { op: 'Sqrt', inputs: ['ve'], outputs: ['sd'] },
        { op: 'Div', inputs: ['d', 'sd'], outputs: ['nrm'] },
        { op: 'Mul', inputs: ['nrm', 'gamma'], outputs: ['sc'] },
        { op: 'Add', inputs: ['sc', 'beta'], outputs: ['af'] },
        { op: 'Relu', inputs: ['af'], outputs: ['r'] },
        { op: 'Gemm', inputs: ['r', 'w2', 'b2'], outputs: ['y'], attrs: { transB: { i: 1 } } },
      ],
      [weights('w1', [6, 4]), weights('b1', [6]), { name: 'eps', dataType: 1, dims: [], raw: f32([1e-5]) }, weights('gamma', [6]), weights('beta', [6]), weights('w2', [3, 6]), weights('b2', [3])],
      ['N', 4],
      ['N', 3],
    );
    assert.equal(r.balanceable, 6, 'the 6 affine units; the Gemm units before the normalization stay visible');
  });

  it('LayerNormalization (opset 17) and BatchNormalization on the input: affine units too', async () => {
    const r = await roundTrip(
      'lnop',
      [
        { op: 'BatchNormalization', inputs: ['x', 'g0', 'b0', 'm0', 'v0'], outputs: ['xb'] },
        { op: 'Gemm', inputs: ['xb', 'w1', 'b1'], outputs: ['h'], attrs: { transB: { i: 1 } } },
        { op: 'LayerNormalization', inputs: ['h', 'gamma', 'beta'], outputs: ['n'], attrs: { axis: { i: -1 } } },
        { op: 'LeakyRelu', inputs: ['n'], outputs: ['r'], attrs: { alpha: { f: 0.1 } } },
        { op: 'Gemm', inputs: ['r', 'w2'], outputs: ['y'], attrs: { transB: { i: 1 } } },
      ],
      [
        weights('g0', [4]),
        weights('b0', [4]),
        weights('m0', [4]),
        { name: 'v0', dataType: 1, dims: [4], raw: f32([1, 2, 0.5, 1.5]) },
        weights('w1', [6, 4]),
        weights('b1', [6]),
        weights('gamma', [6]),
        weights('beta', [6]),
        weights('w2', [3, 6]),
      ],
      ['N', 4],
      ['N', 3],
      17,
    );
    // 4 BatchNorm affine units (balanced against w1), 6 LayerNorm affine units; the Gemm's 6 stay visible.
    assert.equal(r.balanceable, 10);
  });

  it('tensors inside If subgraphs are written back where they are (nested lengths intact)', async () => {
    const dir = scratch();
    const src = join(dir, 'if.onnx');
    const branch = (tag: string, v: number[]) => graphProto({ name: tag, nodes: [{ op: 'Add', inputs: ['x', `k_${tag}`], outputs: [`o_${tag}`] }], initializers: [{ name: `k_${tag}`, dataType: 1, dims: [2], raw: f32(v) }], inputs: [], outputs: [valueInfo(`o_${tag}`, 1, ['N', 2])] });
    writeFileSync(
      src,
      modelProto({
        nodes: [{ op: 'If', inputs: ['c'], outputs: ['y'], name: 'branch', attrs: { then_branch: { g: branch('t', [1, 2]) }, else_branch: { g: branch('e', [3, 4]) } } }],
        initializers: [{ name: 'c', dataType: 9, dims: [], raw: Buffer.from([1]) }],
        inputs: [valueInfo('x', 1, ['N', 2])],
        outputs: [valueInfo('y', 1, ['N', 2])],
      }),
    );
    const cp = onnxFormat.open(src);
    const out = join(dir, 'if2.onnx');
    onnxFormat.write(cp, new Map([['k_t', { name: 'k_t', dtype: 'float32' as const, shape: [2], data: Float32Array.of(10, 20) }]]), out);
    const ort = await onnxRuntime();
    const y = (await runOnnx(out, { x: new ort.Tensor('float32', Float32Array.of(1, 1), [1, 2]) })).get('y')!;
    assert.deepEqual(Array.from(y), [11, 21]);
  });

  it('verification says so when a model takes non-float inputs', async () => {
    const dir = scratch();
    const src = join(dir, 'ints.onnx');
    writeFileSync(src, modelProto({ nodes: [{ op: 'Cast', inputs: ['x'], outputs: ['y'], attrs: { to: { i: 1 } } }], inputs: [valueInfo('x', 7, [2])], outputs: [valueInfo('y', 1, [2])] }));
    await assert.rejects(verifyOnnx(src, src), /ints\.onnx: input x is int64; verification feeds random float inputs only/);
  });

  it('reads the outputs onnxruntime gives as numbers', async () => {
    const ort = await onnxRuntime();
    assert.deepEqual(Array.from(outputValues(new ort.Tensor('float32', Float32Array.of(1, 2), [2]))!), [1, 2]);
  });
});
