// The language server's small pure pieces: globs, settings, URIs, numbers, tensor slices.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GlobSet, globToRegExp } from '../../server/src/lsp/glob';
import { sliceOf } from '../../server/src/lsp/hover';
import { num } from '../../server/src/lsp/numbers';
import { includeGlobs, normalizeSettings } from '../../server/src/lsp/settings';
import { pathOfUri } from '../../server/src/lsp/uris';
import { fileUriOfListing, listingUriOf } from '../../server/src/contract/listing';
import { scopeLabel } from '../../server/src/contract/requests';
import { DEFAULT_SETTINGS } from '../../server/src/contract/settings';
import { FORMATS } from '../../server/src/formats/registry';
import type { TensorSlot } from '../../server/src/app/analysis';

describe('globs', () => {
  const m = (g: string, p: string) => globToRegExp(g).test(p);

  it('match as VS Code settings mean them', () => {
    assert.ok(m('**/*.onnx', 'a.onnx') && m('**/*.onnx', 'x/y/a.onnx'));
    assert.ok(!m('**/*.onnx', 'a.onnx.data') && !m('**/*.onnx', 'a.onnxx'));
    assert.ok(m('models/*.pt', 'models/a.pt') && !m('models/*.pt', 'models/x/a.pt'));
    assert.ok(m('**/*.{pt,pth}', 'a/b.pth') && m('**/*.{pt,pth}', 'b.pt') && !m('**/*.{pt,pth}', 'b.ptx'));
    assert.ok(m('ckpt/epoch-??.safetensors', 'ckpt/epoch-07.safetensors') && !m('ckpt/epoch-??.safetensors', 'ckpt/epoch-7.safetensors'));
    assert.ok(m('[ab].json', 'a.json') && !m('[!ab].json', 'a.json') && m('[!ab].json', 'c.json'));
    assert.ok(m('./runs/**', 'runs/x/y.pt'));
    assert.ok(m('a+b (1).json', 'a+b (1).json'), 'regex characters are literal');
  });

  it('knows when a whole folder is excluded', () => {
    const ex = new GlobSet(DEFAULT_SETTINGS.exclude);
    assert.ok(ex.coversFolder('node_modules') && ex.coversFolder('a/b/node_modules') && ex.coversFolder('.git'));
    assert.ok(!ex.coversFolder('models') && !ex.coversFolder('node_modules_backup'));
  });
});

describe('settings', () => {
  it('fill in defaults and reject bad values field by field, saying why', () => {
    assert.deepEqual(normalizeSettings(null), DEFAULT_SETTINGS);
    const warnings: string[] = [];
    const s = normalizeSettings({ regularizerP: -1, tolerance: 0.01, severity: 'loud', include: ['**/*.pt'], maxDiagnosticsPerLayer: 2.5, activation: 'relu' }, (w) => warnings.push(w));
    assert.equal(s.regularizerP, 2);
    assert.equal(s.tolerance, 0.01);
    assert.equal(s.severity, 'warning');
    assert.deepEqual(s.include, ['**/*.pt']);
    assert.equal(s.maxDiagnosticsPerLayer, 10);
    assert.equal(s.activation, 'relu');
    assert.deepEqual(warnings.map((w) => w.split(' ')[0]), ['synapticBalance.regularizerP', 'synapticBalance.severity', 'synapticBalance.maxDiagnosticsPerLayer']);
  });

  it('default to every extension a registered format uses', () => {
    const globs = includeGlobs(DEFAULT_SETTINGS);
    for (const f of FORMATS) for (const e of f.extensions) assert.ok(globs.includes(`**/*.${e}`), e);
    assert.deepEqual(includeGlobs({ ...DEFAULT_SETTINGS, include: ['a/*.pt'] }), ['a/*.pt']);
  });
});

describe('listing URIs', () => {
  it('mirror the file URI under the listing scheme, both ways', () => {
    assert.equal(listingUriOf('file:///a/b%20c.onnx'), 'synbal-listing:///a/b%20c.onnx.listing');
    assert.equal(fileUriOfListing('synbal-listing:/a/b%20c.onnx.listing'), 'file:///a/b%20c.onnx', "VS Code's form");
    assert.equal(fileUriOfListing('synbal-listing:///a/b.onnx.listing'), 'file:///a/b.onnx');
    assert.equal(listingUriOf('file://host/share/m.pt'), 'synbal-listing://host/share/m.pt.listing');
    assert.equal(fileUriOfListing(listingUriOf('file://host/share/m.pt')), 'file://host/share/m.pt');
    assert.equal(fileUriOfListing('file:///a/b.onnx'), undefined);
    assert.throws(() => listingUriOf('untitled:1'));
  });

  it('resolve to the same path whichever way a client encodes them', () => {
    for (const u of ['file:///a/b%20c.onnx', 'synbal-listing:/a/b%20c.onnx.listing', 'synbal-listing:///a/b%20c.onnx.listing']) assert.equal(pathOfUri(u), '/a/b c.onnx');
    assert.equal(pathOfUri('https://x/y'), undefined);
  });

  it('name scopes as the CLI does', () => {
    assert.equal(scopeLabel({ kind: 'network' }), 'network');
    assert.equal(scopeLabel({ kind: 'layer', layer: 'h1' }), 'layer:h1');
    assert.equal(scopeLabel({ kind: 'layer', layer: 'h1', tied: true }), 'layer-tied:h1');
    assert.equal(scopeLabel({ kind: 'unit', layer: 'h1', index: 3 }), 'unit:h1#3');
  });
});

describe('numbers', () => {
  it('show six significant digits without trailing zeros, integers intact', () => {
    assert.deepEqual([123450, 100000, 0.5, 2.25, 100, 1e-5, 1234567, -0.000123, 0, NaN].map(num), ['123450', '100000', '0.5', '2.25', '100', '1.00e-5', '1.23e+6', '-1.23e-4', '0', '-']);
    assert.equal(num(1 / 3), '0.333333');
  });
});

describe('tensor slices of a unit', () => {
  const slot = (over: Partial<TensorSlot>): TensorSlot => ({ connection: 'c', tensor: 'w', dtype: 'float32', shape: [4, 6], axis: 0, start: 0, length: 4, inner: 1, select: [], kind: 'dense', other: 'x', ...over });

  it('index a row, a column, a flattened channel, a selected direction', () => {
    assert.equal(sliceOf(slot({}), 3, 4), 'w[3, :]');
    assert.equal(sliceOf(slot({ axis: 1, length: 6 }), 2, 6), 'w[:, 2]');
    assert.equal(sliceOf(slot({ shape: [10, 48], axis: 1, length: 48, inner: 16 }), 1, 3), 'w[:, 16:32]');
    assert.equal(sliceOf(slot({ shape: [1, 12, 5], axis: 1, length: 4, start: 4, select: [{ axis: 0, index: 0 }] }), 1, 4), 'w[0, 5, :]');
    assert.equal(sliceOf(slot({ shape: [12], length: 12 }), 1, 4), 'w[{1, 5, 9}]', 'units repeat along a longer axis');
    assert.equal(sliceOf(slot({ shape: [40], length: 40 }), 0, 4), 'w[{0, 4, 8, 12, …}]');
  });
});
