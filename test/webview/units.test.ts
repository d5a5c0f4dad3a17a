// The webview's pure modules in Node: page HTML and nonce, colour scale, series storage,
// frame cache, CSV.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MonitorFrame } from '../../server/src/contract/monitor';
import { buildPalette, DEAD_INDEX, deficitIndex, legendTicks, parseCssColor, packRgb } from '../../webview/src/colorScale';
import { CSV_HEADER, fileStem, seriesCsv } from '../../webview/src/export';
import { FrameCache } from '../../webview/src/frameCache';
import { makeNonce, monitorHtml } from '../../webview/src/html';
import { RunSeries } from '../../webview/src/seriesData';
import { readViewState } from '../../webview/src/state';

describe('monitorHtml', () => {
  const html = monitorHtml({
    scriptUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview/monitor.js',
    styleUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview/monitor.css',
    cspSource: 'https://*.vscode-cdn.net',
    nonce: 'abc123',
    title: 'Runs <&> "x"',
  });

  test('strict CSP: nothing by default, our stylesheet, our nonce-tagged script', () => {
    const csp = /http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(html)![1];
    assert.equal(csp, "default-src 'none'; img-src https://*.vscode-cdn.net data: blob:; style-src https://*.vscode-cdn.net; script-src 'nonce-abc123'".replace(/'/g, '&#39;'));
    assert.match(html, /<script nonce="abc123" src="https:\/\/file\+\.vscode-resource\.vscode-cdn\.net\/ext\/dist\/webview\/monitor\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="[^"]*monitor\.css">/);
    assert.doesNotMatch(html, /style=/, 'no inline styles');
    assert.equal((html.match(/<script/g) ?? []).length, 1);
    assert.match(html, /<div id="app"/);
  });

  test('the title is escaped', () => {
    assert.match(html, /<title>Runs &#60;&#38;&#62; &#34;x&#34;<\/title>/);
    assert.doesNotMatch(html, /<&>/);
  });

  test('makeNonce: 32 alphanumerics, different every time', () => {
    const a = makeNonce();
    const b = makeNonce();
    assert.match(a, /^[A-Za-z0-9]{32}$/);
    assert.notEqual(a, b);
  });
});

describe('colour scale', () => {
  test('log index: 1e-4 and below at the bottom, 1 at the top, one decade = 255/4 steps, NaN dead', () => {
    assert.equal(deficitIndex(0), 0);
    assert.equal(deficitIndex(1e-4), 0);
    assert.equal(deficitIndex(1), 255);
    assert.equal(deficitIndex(2), 255);
    assert.equal(deficitIndex(1e-2), 128); // halfway in log
    assert.equal(deficitIndex(1e-3), 64);
    assert.equal(deficitIndex(NaN), DEAD_INDEX);
    let prev = -1;
    for (let e = -5; e <= 0; e += 0.01) {
      const i = deficitIndex(10 ** e);
      assert.ok(i >= prev);
      prev = i;
    }
  });

  test('palettes: dead colour outside the scale, packed as RGBA bytes', () => {
    for (const kind of ['dark', 'light'] as const) {
      const p = buildPalette({ kind, background: [0, 0, 0], foreground: [255, 255, 255], accent: [0, 0, 255] });
      assert.equal(p.scale.length, 256);
      assert.ok(!p.scale.some((c) => c[0] === p.dead[0] && c[1] === p.dead[1] && c[2] === p.dead[2]));
      const bytes = new Uint8Array(new Uint32Array([p.packed[255]!]).buffer);
      assert.deepEqual([...bytes], [...p.scale[255]!, 255]);
      assert.equal(p.packed[DEAD_INDEX], packRgb(p.dead));
    }
  });

  test('parseCssColor reads what VS Code puts in its variables', () => {
    assert.deepEqual(parseCssColor('#1e1e1e'), [30, 30, 30]);
    assert.deepEqual(parseCssColor(' #fff '), [255, 255, 255]);
    assert.deepEqual(parseCssColor('#ff000080'), [255, 0, 0]);
    assert.deepEqual(parseCssColor('rgba(0, 127, 212, 0.5)'), [0, 127, 212]);
    assert.equal(parseCssColor('var(--x)'), null);
    assert.deepEqual(legendTicks().map((t) => t.label), ['1e-4', '1e-3', '1e-2', '1e-1', '1']);
  });
});

describe('series storage and export', () => {
  const mk = (n: number, from = 0) => ({
    steps: Float64Array.from({ length: n }, (_, i) => (from + i) * 10),
    times: Float64Array.from({ length: n }, (_, i) => from + i),
    values: Float64Array.from({ length: n * 2 * 3 }, (_, j) => from * 6 + j + 1),
  });

  test('appends grow the arrays and keep earlier values; ranges and lookups follow', () => {
    const s = new RunSeries(['a', 'b,c'], [4, 4]);
    for (let k = 0; k < 100; k++) {
      const m = mk(7, k * 7);
      s.append(m.steps, m.times, m.values);
    }
    assert.equal(s.length, 700);
    assert.equal(s.step(699), 6990);
    assert.equal(s.value(0, 0, 0), 1);
    assert.equal(s.value(699, 1, 2), 700 * 6);
    assert.equal(s.indexAtOrBefore(5), 0);
    assert.equal(s.indexAtOrBefore(15), 1);
    assert.equal(s.indexAtOrBefore(1e9), 699);
    assert.deepEqual(s.positiveRange[0], [1, 700 * 6 - 2]); // the last step's largest total deficit (k = 0)
    assert.ok(Math.abs(s.logValues[5]! - Math.log10(6)) < 1e-12);
    assert.throws(() => s.append(new Float64Array(1), new Float64Array(1), new Float64Array(5)));
    s.reset();
    assert.equal(s.length, 0);
    assert.equal(s.indexAtOrBefore(10), -1);
  });

  test('CSV: header, one row per step and layer, quoted names, empty for NaN', () => {
    const s = new RunSeries(['a', 'b,c'], [4, 4]);
    s.append(new Float64Array([0, 10]), new Float64Array([1, 2]), new Float64Array([1, 2, NaN, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
    assert.equal(seriesCsv(s), [CSV_HEADER, '0,1,a,1,2,', '0,1,"b,c",4,5,6', '10,2,a,7,8,9', '10,2,"b,c",10,11,12', ''].join('\n'));
    assert.equal(fileStem('runs/mnist: wd=1e-4'), 'runs_mnist_wd_1e-4');
  });
});

describe('frame cache and state', () => {
  const frame = (runId: string, index: number): MonitorFrame => ({ runId, index, step: index, time: 0, layers: [] });

  test('LRU: evicts the least recently used, reads refresh, dropRun clears a run', () => {
    const c = new FrameCache(3);
    c.put(frame('a', 1));
    c.put(frame('a', 2));
    c.put(frame('b', 1));
    assert.ok(c.get('a', 1)); // a:1 now most recent
    c.put(frame('a', 3)); // evicts a:2
    assert.equal(c.get('a', 2), undefined);
    assert.ok(c.get('a', 1) && c.get('b', 1) && c.get('a', 3));
    c.dropRun('a');
    assert.equal(c.size, 1);
    assert.ok(c.get('b', 1));
  });

  test('readViewState keeps what is valid and defaults the rest', () => {
    assert.deepEqual(readViewState(undefined), { sources: [], followLive: true, selected: {} });
    assert.deepEqual(
      readViewState({ sources: [{ kind: 'log', source: 'file:///a' }, { kind: 'x', source: 1 }], followLive: false, selected: { r: 3, q: -1, z: 'no' } }),
      { sources: [{ kind: 'log', source: 'file:///a' }], followLive: false, selected: { r: 3 } },
    );
  });
});
