// synbal/checkpointCosts over stdio with the real JSON-RPC client: per hidden layer IN/OUT as
// base64 float32, checked against the engine's own analysis of the same file, and ‖W‖_F
// against the weights themselves.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { openNetworkFile } from '../../server/src/app/openNetwork';
import { decodeBase64Floats } from '../../server/src/contract/balanceLog';
import { CheckpointCostsRequest, type CheckpointCostsResult } from '../../server/src/contract/requests';
import { tensorValues } from '../../server/src/tensor/tensor';
import { TestClient, fileUri } from './client';
import { makeWorkspace } from './workspace';

const MODELS = join(__dirname, '..', 'fixtures', 'models');

function engineLayers(path: string, p: number) {
  const opened = openNetworkFile(path);
  const a = analyze(compile(opened.network, lp(p)), undefined, { skipPredictions: true });
  return { opened, layers: a.layers.filter((l) => l.role === 'hidden' && l.balanceable > 0) };
}

/** ‖[W | b]‖_F of the weights feeding `group` (BatchNorm's β included, its running mean not), straight from the tensors. */
function incomingNorm(path: string, group: string): number {
  const { network } = openNetworkFile(path);
  let sq = 0;
  for (const c of network.connections.filter((c) => c.to === group && c.regularized !== false)) {
    const t = network.tensors.find((x) => x.name === c.tensor)!;
    for (const v of tensorValues(t)) sq += v * v;
  }
  return Math.sqrt(sq);
}

function assertMatches(r: CheckpointCostsResult, path: string, p: number): void {
  const { layers } = engineLayers(path, p);
  assert.equal(r.regularizerP, p);
  assert.deepEqual(r.layers.map((l) => l.name), layers.map((l) => l.name));
  assert.ok(r.layers.length > 0);
  for (const [k, l] of r.layers.entries()) {
    const inCost = decodeBase64Floats(l.in, 'float32');
    const outCost = decodeBase64Floats(l.out, 'float32');
    const ref = layers[k].unitReports;
    assert.equal(inCost.length, ref.length);
    for (let u = 0; u < ref.length; u++) {
      assert.ok(Math.abs(inCost[u] - ref[u].in) <= 1e-6 * ref[u].in, `${l.name}#${u} IN ${inCost[u]} vs ${ref[u].in}`);
      assert.ok(Math.abs(outCost[u] - ref[u].out) <= 1e-6 * ref[u].out, `${l.name}#${u} OUT ${outCost[u]} vs ${ref[u].out}`);
    }
    const norm = incomingNorm(path, l.name);
    assert.ok(Math.abs(l.weightNorm - norm) <= 1e-9 * norm, `${l.name} ‖W‖ ${l.weightNorm} vs ${norm}`);
  }
}

describe('synbal/checkpointCosts', () => {
  let root: string;
  let c: TestClient;
  let c1: TestClient;
  const files = ['mlp_relu.onnx', 'cnn_bn.onnx', 'mlp_relu_script.pt'];

  before(async () => {
    root = makeWorkspace(Object.fromEntries(files.map((f) => [join('ckpts', f), readFileSync(join(MODELS, f))])));
    c = await TestClient.start({ root });
    c1 = await TestClient.start({ root, settings: { regularizerP: 1 } });
  });
  after(async () => {
    await c.stop();
    await c1.stop();
  });

  for (const f of files) {
    it(`matches the engine's IN/OUT per unit and ‖W‖_F on ${f} (p = 2)`, async () => {
      const path = join(root, 'ckpts', f);
      const r: CheckpointCostsResult = await c.conn.sendRequest(CheckpointCostsRequest.method, { uri: fileUri(path) });
      assert.equal(r.fileUri, fileUri(path));
      assertMatches(r, path, 2);
    });
  }

  it('measures with the configured p, and still reports ‖W‖_F (from an L2 analysis)', async () => {
    const path = join(root, 'ckpts', 'mlp_relu.onnx');
    const r: CheckpointCostsResult = await c1.conn.sendRequest(CheckpointCostsRequest.method, { uri: fileUri(path) });
    assertMatches(r, path, 1);
  });

  it('answers an error naming the file when it is missing', async () => {
    const path = join(root, 'ckpts', 'gone.onnx');
    await assert.rejects(c.conn.sendRequest(CheckpointCostsRequest.method, { uri: fileUri(path) }), (e: Error) => e.message.includes(path));
  });
});
