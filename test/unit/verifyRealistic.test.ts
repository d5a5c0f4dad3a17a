// Verification that means something: realistic input sizes, inconclusive checks, half-precision
// limits from the original's own sensitivity, and discontinuous outputs judged on their inputs.
// Fixtures: test/fixtures/verify/generate.py (torch 1.13 exports).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Ajv2020 from 'ajv/dist/2020';
import { main } from '../../server/src/cli';
import { parseArgs } from '../../server/src/cli/args';
import { balanceRequestOf } from '../../server/src/cli/requests';
import { openNetworkFile, type OpenedNetwork } from '../../server/src/app/openNetwork';
import { compileFor } from '../../server/src/app/problem';
import { writeChecked } from '../../server/src/app/writeChecked';
import { balance } from '../../server/src/engine/balance';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { lp } from '../../server/src/engine/regularizer';
import { compareFunctions } from '../../server/src/engine/verify';
import { mlp } from '../../server/src/examples/networks';
import { verifyOnnx } from '../../server/src/formats/onnx/verify';
import { chooseInputShapes, metadataProps } from '../../server/src/formats/onnx/verifyInputs';
import { withExtraOutputs } from '../../server/src/formats/onnx/verifyOutputs';
import { modelProto, valueInfo } from '../../server/src/formats/onnx/encode';
import { makeTensor, tensorValues, type Tensor } from '../../server/src/tensor/tensor';
import { scratchDir } from '../support/scratch';

const FIX = join(__dirname, '..', 'fixtures', 'verify');
const SCHEMA = JSON.parse(readFileSync(join(__dirname, '..', '..', 'server', 'schemas', 'report.schema.json'), 'utf8'));
const validateReport = new Ajv2020({ allErrors: true, strict: false }).compile(SCHEMA);
const CHECKED = { enabled: true, force: false, requireCheck: true };

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const scratch = () => scratchDir('synbal-verify-');

function balanced(path: string): { opened: OpenedNetwork; changed: Map<string, Tensor> } {
  const opened = openNetworkFile(path);
  const problem = compileFor(path, opened.network, lp(2));
  return { opened, changed: scaledTensors(problem, balance(problem, { tolerance: 1e-9 }).x) };
}

/** The same balance with its first weight matrix scaled along the wrong axis (columns, not rows). */
function wrongAxis(opened: OpenedNetwork, changed: Map<string, Tensor>): Map<string, Tensor> {
  const [name, t] = [...changed].find(([, x]) => x.shape.length === 2)!;
  const orig = tensorValues(opened.network.tensors.find((x) => x.name === name)!);
  const now = tensorValues(t);
  const [rows, cols] = t.shape;
  const f = Array.from({ length: rows }, (_, i) => now[i * cols] / orig[i * cols]);
  const wrong = Float64Array.from(orig, (v, k) => v * f[(k % cols) % rows]);
  return new Map(changed).set(name, makeTensor(name, t.dtype, t.shape, wrong));
}

describe('realistic input sizes', () => {
  it('a model that outputs a constant on 2×2 images: inconclusive at size 2, verified at 224', async () => {
    const src = join(FIX, 'tiny_constant.onnx');
    const dir = scratch();
    const { opened, changed } = balanced(src);
    const w = await writeChecked(opened, changed, join(dir, 'ok.onnx'), { backup: false, verify: { ...CHECKED, force: true }, activation: '' });
    const tiny = await verifyOnnx(src, w.written[0], 1, { symbolicDim: 2 });
    assert.match(tiny.inconclusive ?? '', /same for all 4 random inputs at input 2×3×2×2/);
    const real = await verifyOnnx(src, w.written[0]);
    assert.equal(real.inconclusive, undefined);
    assert.deepEqual(real.inputs[0].shape, [1, 3, 224, 224]);
    assert.equal(real.inputs[0].source, 'default');
    assert.ok(real.maxRelative < 1e-4, String(real.maxRelative));
    // …and at 224 a wrong balance shows: the check has teeth there.
    await assert.rejects(
      writeChecked(opened, wrongAxis(opened, changed), join(dir, 'bad.onnx'), { backup: false, verify: CHECKED, activation: '' }),
      /outputs differ by .* nothing written/,
    );
  });

  it('--verify refuses an inconclusive check without --force, and says so with it; --input-shape is parsed, used and reported', async () => {
    const dir = scratch();
    const src = join(FIX, 'tiny_constant.onnx');
    const refused = await run(['balance', src, '-o', join(dir, 'a.onnx'), '--verify', '--input-shape', 'input=2x3x2x2']);
    assert.equal(refused.code, 2);
    assert.match(refused.err, /the check was inconclusive .*nothing written/);
    assert.ok(!existsSync(join(dir, 'a.onnx')));
    const forced = await run(['balance', src, '-o', join(dir, 'b.onnx'), '--verify', '--force', '--input-shape', '2x3x2x2']);
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.out, /inputs: input 2×3×2×2 \(from --input-shape\)/);
    assert.match(forced.out, /INCONCLUSIVE, not verified/);
    const json = await run(['balance', src, '-o', join(dir, 'c.onnx'), '--verify', '--input-shape', 'input=1x3x96x80', '--format', 'json']);
    assert.equal(json.code, 0, json.err);
    const doc = JSON.parse(json.out) as { verification: { inputs: unknown; inconclusive?: string } };
    assert.ok(validateReport(doc), JSON.stringify(validateReport.errors));
    assert.deepEqual(doc.verification.inputs, [{ name: 'input', type: 'float32', shape: [1, 3, 96, 80], source: 'option' }]);
    assert.equal(doc.verification.inconclusive, undefined);
  });

  it('--input-shape: repeatable, validated against the model', async () => {
    const req = balanceRequestOf(parseArgs(['balance', 'm.onnx', '--verify', '--input-shape', 'a=1x3x320x320', '--input-shape=b=1,8']));
    assert.deepEqual(req.verify.inputShapes, { a: [1, 3, 320, 320], b: [1, 8] });
    assert.throws(() => balanceRequestOf(parseArgs(['balance', 'm.onnx', '--input-shape', 'a=1x3'])), /give it with --verify/);
    assert.throws(() => balanceRequestOf(parseArgs(['balance', 'm.onnx', '--verify', '--input-shape', 'a=1x0x3'])), /positive integers/);
    const dir = scratch();
    const r = await run(['balance', join(FIX, 'flatten_fixed.onnx'), '-o', join(dir, 'x.onnx'), '--verify', '--input-shape', 'input=1x3x16']);
    assert.equal(r.code, 2);
    assert.match(r.err, /has 3 dimensions; the model's input has 4/);
    const nope = await run(['balance', join(FIX, 'flatten_fixed.onnx'), '-o', join(dir, 'y.onnx'), '--verify', '--input-shape', 'image=1x3x16x16']);
    assert.match(nope.err, /names image, which is not an input of the model/);
  });

  it('a Gemm after a Flatten fixes the image size: found from the graph, and reported', async () => {
    const dir = scratch();
    const r = await run(['balance', join(FIX, 'flatten_fixed.onnx'), '-o', join(dir, 'f.onnx'), '--verify', '--format', 'json']);
    assert.equal(r.code, 0, r.err);
    const doc = JSON.parse(r.out) as { verification: { inputs: { shape: number[]; source: string; note: string }[] } };
    assert.ok(validateReport(doc), JSON.stringify(validateReport.errors));
    assert.deepEqual(doc.verification.inputs[0].shape, [1, 3, 16, 16]);
    assert.equal(doc.verification.inputs[0].source, 'graph');
    assert.match(doc.verification.inputs[0].note, /takes 256 features, would get 50176/);
  });

  it('the model\'s metadata_props give sizes; fixed dimensions stay', () => {
    const meta = new Map([['input_shape', '1x3x320x320']]);
    const inputs = [{ name: 'x', type: 'float32', dims: [undefined, 3, undefined, undefined] }];
    assert.deepEqual(chooseInputShapes(inputs, { metadata: meta, path: 'm.onnx' })[0], { name: 'x', type: 'float32', shape: [1, 3, 320, 320], source: 'metadata', note: 'metadata_props input_shape' });
    assert.deepEqual(chooseInputShapes(inputs, { path: 'm.onnx' })[0].shape, [1, 3, 224, 224]);
    assert.deepEqual(chooseInputShapes([{ name: 's', type: 'float32', dims: [undefined, undefined, 16] }], { path: 'm.onnx' })[0].shape, [1, 64, 16]);
    // metadata_props read from a model's bytes (ModelProto field 14).
    const bytes = new Uint8Array(Buffer.concat([modelProto({ nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], inputs: [valueInfo('x', 1, ['n', 4])], outputs: [valueInfo('y', 1, ['n', 4])] }), Buffer.from([0x72, 0x11, 0x0a, 0x0b, ...Buffer.from('input_shape'), 0x12, 0x02, ...Buffer.from('28')])]));
    assert.equal(metadataProps(bytes).get('input_shape'), '28');
  });
});

describe('discontinuous outputs', () => {
  it('an ArgMax-output model is judged on its logits: a right balance passes, a wrong one is refused', async () => {
    const src = join(FIX, 'argmax_head.onnx');
    const dir = scratch();
    const { opened, changed } = balanced(src);
    const ok = await writeChecked(opened, changed, join(dir, 'ok.onnx'), { backup: false, verify: CHECKED, activation: '' });
    const v = ok.verification!;
    assert.deepEqual(v.judgedOn?.map((j) => j.output), ['output']);
    assert.deepEqual(v.judgedOn![0].via, ['/body/body.4/Gemm_output_0']);
    assert.ok(v.maxRelative < 1e-4);
    await assert.rejects(
      writeChecked(opened, wrongAxis(opened, changed), join(dir, 'bad.onnx'), { backup: false, verify: CHECKED, activation: '' }),
      /outputs differ by/,
    );
    // The extra outputs exist only in the bytes handed to onnxruntime.
    assert.equal(withExtraOutputs(new Uint8Array(4), []).length, 4);
    const r = await run(['balance', src, '-o', join(dir, 'c.onnx'), '--verify']);
    assert.match(r.out, /output is a discontinuous function of the weights: judged on \/body\/body\.4\/Gemm_output_0 \(0 of 4 elements differ\)/);
  });
});

describe('half precision', () => {
  it('a float16 model computing in float16: judged against its own one-step sensitivity; a right balance passes, a wrong axis is refused', async () => {
    const src = join(FIX, 'mlp_f16_wide.onnx');
    const dir = scratch();
    const { opened, changed } = balanced(src);
    assert.ok([...changed.values()].every((t) => t.dtype === 'float16'));
    const ok = await writeChecked(opened, changed, join(dir, 'ok.onnx'), { backup: false, verify: CHECKED, activation: '' });
    const v = ok.verification!;
    // Above twice float16's rounding (the old limit, which refused this correct copy), below its own limit.
    assert.ok(v.maxRelative > 2 * 2 ** -10, String(v.maxRelative));
    assert.ok(v.limit !== undefined && v.maxRelative <= v.limit, `${v.maxRelative} vs ${v.limit}`);
    assert.match(v.limitBasis ?? '', /one rounding step/);
    await assert.rejects(
      writeChecked(opened, wrongAxis(opened, changed), join(dir, 'bad.onnx'), { backup: false, verify: CHECKED, activation: '' }),
      /outputs differ by .*one rounding step/,
    );
  });
});

describe('the engine\'s check', () => {
  it('reports inconclusive when every output is the same for all inputs', () => {
    const net = mlp({ sizes: [3, 4, 2], seed: 1, std: 0.5 });
    for (const t of net.tensors) if (!net.connections.some((c) => c.tensor === t.name && c.kind === 'bias')) t.data.fill(0);
    const c = compareFunctions(net, net);
    assert.match(c.inconclusive ?? '', /same for all 4 random inputs/);
    assert.equal(compareFunctions(mlp({ sizes: [3, 4, 2], seed: 1, std: 0.5 }), mlp({ sizes: [3, 4, 2], seed: 1, std: 0.5 })).inconclusive, undefined);
  });
});
