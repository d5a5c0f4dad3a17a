// The bundled server over stdio, driven by a real JSON-RPC client: listings, diagnostics,
// hovers, lenses, symbols, code actions, and what the requests and commands do to files.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CodeAction, CodeLens, Diagnostic, DocumentSymbol, FoldingRange, Hover } from 'vscode-languageserver-protocol';
import { DiagnosticSeverity } from 'vscode-languageserver-protocol';
import { join } from 'node:path';
import { TestClient, fileUri, textOf } from './client';
import { exampleJson, makeWorkspace, malformedJson, tanhJson } from './workspace';
import { type LayerUnbalancedData, type UnitUnbalancedData } from '../../server/src/contract/diagnostics';
import { listingUriOf } from '../../server/src/contract/listing';
import { CheckpointsRequest, Commands, type CheckpointInfo } from '../../server/src/contract/requests';

const codes = (ds: Diagnostic[] | undefined) => (ds ?? []).map((d) => d.code);
const count = (ds: Diagnostic[] | undefined, code: string) => codes(ds).filter((c) => c === code).length;

describe('a workspace of checkpoints', () => {
  let c: TestClient;
  let root: string;
  const uri = (rel: string) => fileUri(join(root, rel));

  before(async () => {
    root = makeWorkspace({
      'mlp.json': exampleJson('mlp'),
      'models/conv.json': exampleJson('conv'),
      'models/rnn.json': exampleJson('rnn'),
      'models/tanh.json': tanhJson(),
      'bad/truncated.json': exampleJson('mlp').slice(0, 500),
      'bad/malformed.json': malformedJson(),
      'bad/garbage.onnx': Buffer.from('this is not a model at all'),
      'package.json': '{"name": "not a model"}',
      'node_modules/pkg/mlp.json': exampleJson('mlp'),
    });
    c = await TestClient.start({ root, settings: { include: ['**/*.json', '**/*.onnx'] } });
    for (const rel of ['mlp.json', 'models/conv.json', 'models/rnn.json', 'models/tanh.json', 'bad/truncated.json', 'bad/malformed.json', 'bad/garbage.onnx']) await c.settled(uri(rel));
  });
  after(() => c.stop());

  it('publishes per-layer and capped per-unit diagnostics on the listing, and one summary on the file', async () => {
    const listing = listingUriOf(uri('mlp.json'));
    assert.equal(listing, `synbal-listing://${join(root, 'mlp.json')}.listing`);
    const ds = c.diagnostics.get(listing)!;
    assert.equal(count(ds, 'layer-unbalanced'), 2);
    assert.equal(count(ds, 'unit-unbalanced'), 20, 'at most maxDiagnosticsPerLayer (10) per layer');
    assert.ok(ds.every((d) => d.source === 'synaptic-balance' && d.severity === DiagnosticSeverity.Warning && d.data));
    const text = (await c.listing(listing)).text.split('\n');
    for (const d of ds) {
      const line = text[d.range.start.line];
      const token = line.slice(d.range.start.character, d.range.end.character);
      if (d.code === 'layer-unbalanced') {
        const data = d.data as LayerUnbalancedData;
        assert.equal(token, data.layer);
        assert.match(line, /^layer /);
        assert.equal(data.unbalanced, 16);
        assert.ok(data.eachDeltaR! > 0 && data.tiedDeltaR! > 0);
      } else {
        const data = d.data as UnitUnbalancedData;
        assert.equal(token, `${data.layer}#${data.unit}`);
        assert.ok(data.relativeDeficit > 1e-3 && data.lambda! > 0 && data.deltaR! > 0);
      }
    }
    const summary = c.diagnostics.get(uri('mlp.json'))!;
    assert.equal(summary.length, 1);
    assert.equal(summary[0].code, 'checkpoint-unbalanced');
    assert.match(textOf(summary[0].message), /32 of 32 balanceable units out of balance in 2 layers/);
    const related = summary[0].relatedInformation!;
    assert.ok(related.length >= 3 && related.every((r) => r.location.uri === listing));
    assert.match(text[related[0].location.range.start.line], /^ {2}h2#14 /, 'the first related location is the worst unit');
  });

  it('notes units that cannot be balanced, and why, at information level', () => {
    const ds = c.diagnostics.get(listingUriOf(uri('models/tanh.json')))!;
    const notes = ds.filter((d) => d.code === 'not-balanceable');
    assert.equal(notes.length, 1);
    assert.equal(notes[0].severity, DiagnosticSeverity.Information);
    assert.match(textOf(notes[0].message), /^Layer h1: 6 units cannot be balanced: .*tanh/);
    assert.ok(count(ds, 'layer-unbalanced') === 1, 'the ReLU layer is still reported');
  });

  it('gives each bad file one clear error on its file URI and keeps serving the others', async () => {
    const expect: Record<string, [string, RegExp]> = {
      'bad/truncated.json': ['unreadable', /not valid JSON/],
      'bad/malformed.json': ['unreadable', /shape \[17, 8\] needs 136 values, found 128/],
      'bad/garbage.onnx': ['', /not a model format this tool knows|onnx|ONNX/],
    };
    for (const [rel, [code, message]] of Object.entries(expect)) {
      const ds = c.diagnostics.get(uri(rel))!;
      assert.equal(ds.length, 1, rel);
      assert.equal(ds[0].severity, DiagnosticSeverity.Error);
      if (code) assert.equal(ds[0].code, code);
      assert.match(textOf(ds[0].message), message);
      assert.ok(!textOf(ds[0].message).startsWith(join(root, rel)), 'the message does not repeat the path it sits on');
      assert.deepEqual(c.diagnostics.get(listingUriOf(uri(rel))), []);
      assert.match((await c.listing(uri(rel))).text, /^Synaptic Balance listing of .*\nerror {8}/);
    }
    assert.equal(c.diagnostics.get(uri('package.json')), undefined, 'a JSON file that is no network is not a checkpoint');
    assert.equal(c.diagnostics.get(uri('node_modules/pkg/mlp.json')), undefined, 'excluded folders are not scanned');
    const all = (await c.conn.sendRequest(CheckpointsRequest.method, {})) as CheckpointInfo[];
    assert.deepEqual(all.map((i) => i.fileUri).sort(), ['mlp.json', 'models/conv.json', 'models/rnn.json', 'models/tanh.json', 'bad/truncated.json', 'bad/malformed.json', 'bad/garbage.onnx'].map(uri).sort());
    assert.equal(all.find((i) => i.fileUri === uri('mlp.json'))!.unbalanced, 32);
  });

  it('serves the listing: header, one line per layer and per unit (also as workspace/textDocumentContent)', async () => {
    const listing = listingUriOf(uri('mlp.json'));
    const r = await c.listing(listing);
    assert.equal(r.state, 'analysed');
    const lines = r.text.split('\n');
    assert.match(lines[0], /^Synaptic Balance listing of .*mlp\.json$/);
    assert.match(lines[1], /^format {7}synbal-network /);
    assert.match(lines[2], /484 parameters, 44 units/);
    assert.match(lines[3], /^regularizer {2}L2; tolerance 0\.001/);
    assert.match(lines[4], /^R {12}121\.086;/);
    const layers = lines.filter((l) => l.startsWith('layer '));
    assert.deepEqual(layers.map((l) => l.split(/\s+/)[1]), ['input', 'h1', 'h2', 'output']);
    assert.match(layers[1], /^layer h1 {2}hidden {2}leaky_relu \(example\) {2}units 16 {2}balanceable 16 {2}IN 35\.8267 {2}OUT 58\.5839 {2}max rel 0\.651555 {2}mean rel 0\.293387 {2}unbalanced 16$/);
    const units = lines.filter((l) => /^ {2}h1#\d+ /.test(l));
    assert.equal(units.length, 16);
    assert.match(units[9], /^ {2}h1#9 +IN 0\.708 +OUT 3\.35577 +rel 0\.651555 +λ\* 1\.4755 +ΔR 0\.980987 +unbalanced +leaky_relu \(example\)$/);
    const byContent = (await c.conn.sendRequest('workspace/textDocumentContent', { uri: listing })) as { text: string };
    assert.equal(byContent.text, r.text);
    assert.equal((await c.listing(uri('mlp.json'))).text, r.text, 'the file: URI names the same listing');
  });

  it('hovers on unit and layer lines', async () => {
    const listing = listingUriOf(uri('mlp.json'));
    const d = c.diagnostics.get(listing)!.find((x) => x.code === 'unit-unbalanced' && (x.data as UnitUnbalancedData).unit === 9)!;
    const h = (await c.conn.sendRequest('textDocument/hover', { textDocument: { uri: listing }, position: { line: d.range.start.line, character: 30 } })) as Hover;
    const md = textOf(h.contents);
    assert.match(md, /\*\*h1#9\*\* — hidden unit, leaky_relu \(example\)/);
    assert.match(md, /incoming cost IN \| 0\.708 \|/);
    assert.match(md, /outgoing cost OUT \| 3\.35577 \|/);
    assert.match(md, /λ\* \(balancing this unit alone\) \| 1\.4755 \|/);
    assert.match(md, /ΔR \(decrease of R\) \| 0\.980987 \|/);
    assert.match(md, /in: `fc1\.weight\[9, :\]`/);
    assert.match(md, /in: `fc1\.bias\[9\]` \(bias\)/);
    assert.match(md, /out: `fc2\.weight\[:, 9\]` \(dense to h2\)/);
    assert.deepEqual(h.range, d.range);
    const layer = c.diagnostics.get(listing)!.find((x) => x.code === 'layer-unbalanced')!;
    const lh = (await c.conn.sendRequest('textDocument/hover', { textDocument: { uri: listing }, position: layer.range.start })) as Hover;
    assert.match(textOf(lh.contents), /\*\*layer h1\*\*[\s\S]*tied \(one λ\) \| λ = 1\.13082/);
    const conv = listingUriOf(uri('models/conv.json'));
    const cd = c.diagnostics.get(conv)!.find((x) => x.code === 'unit-unbalanced')!;
    const ch = (await c.conn.sendRequest('textDocument/hover', { textDocument: { uri: conv }, position: cd.range.start })) as Hover;
    assert.match(textOf(ch.contents), /in: `\w+\.weight\[\d+, :, :, :\]`/, 'a channel lives in a slice of a 4-d kernel');
  });

  it('puts "Balance layer" and "Balance network" lenses on hidden layer lines', async () => {
    const listing = listingUriOf(uri('mlp.json'));
    const lenses = (await c.conn.sendRequest('textDocument/codeLens', { textDocument: { uri: listing } })) as CodeLens[];
    assert.equal(lenses.length, 4);
    assert.deepEqual(lenses.map((l) => l.command!.title.replace(/ \(.*\)$/, '')), ['Balance layer', 'Balance network', 'Balance layer', 'Balance network']);
    assert.ok(lenses.every((l) => l.command!.command === Commands.balance));
    assert.deepEqual(lenses[0].command!.arguments, [{ file: uri('mlp.json'), scope: { kind: 'layer', layer: 'h1' } }]);
  });

  it('outlines layers with their units, and folds layers', async () => {
    const listing = listingUriOf(uri('mlp.json'));
    const syms = (await c.conn.sendRequest('textDocument/documentSymbol', { textDocument: { uri: listing } })) as DocumentSymbol[];
    assert.deepEqual(syms.map((s) => s.name), ['input', 'h1', 'h2', 'output']);
    assert.deepEqual(syms.map((s) => s.children!.length), [8, 16, 16, 4]);
    assert.equal(syms[1].children![3].name, 'h1#3');
    const folds = (await c.conn.sendRequest('textDocument/foldingRange', { textDocument: { uri: listing } })) as FoldingRange[];
    const layerFolds = folds.filter((f) => f.kind === 'region');
    assert.deepEqual(layerFolds.map((f) => f.endLine - f.startLine), [8, 16, 16, 4]);
    assert.deepEqual(layerFolds.map((f) => f.startLine), syms.map((s) => s.selectionRange.start.line));
  });

  it('offers quick fixes for a unit diagnostic, resolved lazily with the predicted ΔR, and a fix-all source action', async () => {
    const listing = listingUriOf(uri('mlp.json'));
    const d = c.diagnostics.get(listing)!.find((x) => x.code === 'unit-unbalanced' && (x.data as UnitUnbalancedData).unit === 9)!;
    const actions = (await c.conn.sendRequest('textDocument/codeAction', { textDocument: { uri: listing }, range: d.range, context: { diagnostics: [d] } })) as CodeAction[];
    assert.deepEqual(actions.map((a) => a.title), [
      'Balance unit h1#9 (λ* = 1.4755, R −0.980987)',
      'Balance layer h1, each unit (R −6.05095)',
      'Balance layer h1 with one shared λ (tied) (λ = 1.13082, R −2.78379)',
      'Balance the whole network (global optimum)',
    ]);
    assert.ok(actions.every((a) => a.kind === 'quickfix' && a.command === undefined && a.data), 'the command comes with resolve');
    assert.equal(actions[0].isPreferred, true);
    const resolved = await Promise.all(actions.map((a) => c.conn.sendRequest('codeAction/resolve', a) as Promise<CodeAction>));
    assert.match(resolved[0].title, /^Balance unit h1#9 — predicted R 121\.086 → 120\.105 \(R −0\.980987\)$/);
    assert.match(resolved[3].title, /^Balance the whole network \(global optimum\) — predicted R 121\.086 → 104\.03 \(R −17\.0559\)$/);
    for (const r of resolved) {
      assert.equal(r.command!.command, Commands.balance);
      assert.equal((r.command!.arguments![0] as { file: string }).file, uri('mlp.json'));
    }
    const again = (await c.conn.sendRequest('textDocument/codeAction', { textDocument: { uri: listing }, range: d.range, context: { diagnostics: [d] } })) as CodeAction[];
    assert.match(again[3].title, /^Balance the whole network \(global optimum\) \(R −17\.0559, 14\.0858%\)$/, 'a resolved prediction shows in later lists');
    const fixAll = (await c.conn.sendRequest('textDocument/codeAction', { textDocument: { uri: listing }, range: d.range, context: { diagnostics: [], only: ['source.fixAll'] } })) as CodeAction[];
    assert.deepEqual(fixAll.map((a) => [a.kind, a.title]), [['source.fixAll.synbal', 'Fix all: balance mlp.json to its global optimum']]);
    const onFile = (await c.conn.sendRequest('textDocument/codeAction', {
      textDocument: { uri: uri('mlp.json') },
      range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
      context: { diagnostics: c.diagnostics.get(uri('mlp.json')) },
    })) as CodeAction[];
    assert.deepEqual(onFile.map((a) => a.title), ['Balance the whole network (global optimum) (R −17.0559, 14.0858%)']);
  });
});
