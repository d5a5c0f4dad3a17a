// The training monitor webview in real headless Chromium: pixels, DOM, messages, state.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { buildPalette, deficitIndex, type Rgb, type ThemeColors } from '../../webview/src/colorScale';
import { CSV_HEADER } from '../../webview/src/export';
import {
  appendFixture, frameFixture, launchChromium, layer, openMonitor, seriesFixture, seriesValue, serveMonitor,
  type MonitorPage, type MonitorServer,
} from './harness';

const DARK: ThemeColors = { kind: 'dark', background: [30, 30, 30], foreground: [212, 212, 212], accent: [0, 127, 212] };
const LIGHT: ThemeColors = { kind: 'light', background: [255, 255, 255], foreground: [0, 0, 0], accent: [0, 95, 184] };
const darkPalette = buildPalette(DARK);
const lightPalette = buildPalette(LIGHT);
const top = (p: typeof darkPalette): number[] => [...p.scale[255]!];
const at = (p: typeof darkPalette, v: number): number[] => [...(Number.isNaN(v) ? p.dead : p.scale[deficitIndex(v)]!) as Rgb];

const RUN = { id: 'r1', label: 'mnist-mlp', kind: 'log', source: 'file:///work/runs/mnist.synbal.jsonl' };
const RUN2 = { id: 'r2', label: 'mnist-mlp-wd', kind: 'log', source: 'file:///work/runs/mnist-wd.synbal.jsonl' };
const LAYERS = ['fc1', 'fc2', 'fc3'];
const UNITS = [8, 16, 4];
const steps = (n: number, every = 10) => Array.from({ length: n }, (_, i) => i * every);

/** Frame `index` of run r1: fc1 unit 0 = 1 (top), unit 1 dead, unit 2 = 0.01 + index/1000; fc2 all 1e-5 but unit 5 = 0.1; fc3 all 0.5. */
function frameR1(index: number, checkpoint?: string) {
  return frameFixture('r1', index, index * 10, [
    layer('fc1', 8, 0.001, { 0: 1, 1: NaN, 2: 0.01 + index / 1000 }, true),
    layer('fc2', 16, 1e-5, { 5: 0.1 }, true),
    layer('fc3', 4, 0.5),
  ], checkpoint);
}

let browser: Browser;
let server: MonitorServer;

before(async () => {
  browser = await launchChromium();
  server = await serveMonitor();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** A page with run r1 loaded (`n` steps), following live, showing the last frame. */
async function withRun(n = 50, opts: { theme?: 'dark' | 'light'; checkpoint?: string } = {}): Promise<MonitorPage> {
  const m = await openMonitor(browser, server, { theme: opts.theme ?? 'dark' });
  await m.host({ type: 'runs', runs: [RUN] });
  await m.host(seriesFixture('r1', LAYERS, UNITS, steps(n)));
  await m.page.waitForFunction((i) => (window as any).__sb.posted.some((p: any) => p.type === 'requestFrame' && p.index === i), n - 1);
  await m.host(frameR1(n - 1, opts.checkpoint));
  await m.waitRendered('r1', n - 1);
  return m;
}

async function requests(m: MonitorPage): Promise<{ runId: string; index: number }[]> {
  return (await m.posted('requestFrame')).map((p) => ({ runId: p.runId, index: p.index }));
}

async function waitRequest(m: MonitorPage, runId: string, index: number): Promise<void> {
  await m.page.waitForFunction(([id, i]) => (window as any).__sb.posted.some((p: any) => p.type === 'requestFrame' && p.runId === id && p.index === i), [runId, index] as const, { timeout: 5000 });
}

describe('monitor webview (headless Chromium)', () => {
  test('page is the real monitorHtml under its CSP: no violations, and the policy is enforced', async () => {
    const m = await withRun(20);
    const html = await m.page.content();
    assert.match(html, new RegExp(`script-src 'nonce-${server.nonce}'`));
    assert.match(html, /default-src 'none'/);
    const first = (await m.posted())[0];
    assert.deepEqual(first, { type: 'ready' });
    // Hover (tooltip positioning) and the legend write styles: through the CSSOM, never attributes.
    const box = (await m.page.locator('.run[data-run-id="r1"] .heatmap-canvas').boundingBox())!;
    await m.page.mouse.move(box.x + 5, box.y + 5);
    await m.page.waitForSelector('.tooltip:not([hidden])');
    assert.deepEqual(await m.violations(), []);
    assert.deepEqual(m.consoleErrors, []);
    // Positive control: an inline style attribute is blocked, and the log sees it.
    await m.page.evaluate(() => {
      const d = document.createElement('div');
      d.innerHTML = '<span style="color: red">x</span>';
      document.body.append(d);
    });
    await m.page.waitForFunction(() => (window as any).__sb.violations.length > 0);
    assert.match((await m.violations())[0]!, /style-src/);
    await m.page.context().close();
  });

  test('heatmap pixels: top colour at deficit 1, dead colour for NaN, layers in their rows; DOM labels, legend, title', async () => {
    const m = await withRun(20);
    const i = 19;
    assert.deepEqual(await m.cellPixel('r1', 0, 0, 8), top(darkPalette), 'deficit 1 is the top colour');
    assert.deepEqual(await m.cellPixel('r1', 0, 1, 8), [...darkPalette.dead], 'a dead unit is the dead colour');
    assert.deepEqual(await m.cellPixel('r1', 0, 2, 8), at(darkPalette, Math.fround(0.01 + i / 1000)));
    assert.deepEqual(await m.cellPixel('r1', 0, 3, 8), at(darkPalette, Math.fround(0.001)));
    assert.deepEqual(await m.cellPixel('r1', 1, 5, 16), at(darkPalette, 0.1), 'fc2 unit 5 in the second band');
    assert.deepEqual(await m.cellPixel('r1', 1, 4, 16), [...darkPalette.scale[0]!], 'below 1e-4 is the bottom colour');
    assert.deepEqual(await m.cellPixel('r1', 2, 1, 4), at(darkPalette, 0.5), 'fc3 in the third band');
    assert.notDeepEqual(top(darkPalette), [...darkPalette.dead]);

    const dom = await m.page.evaluate(() => ({
      labels: [...document.querySelectorAll('.run[data-run-id="r1"] .heatmap-label .name')].map((e) => e.textContent),
      title: document.querySelector('.run[data-run-id="r1"] .run-title')?.textContent,
      ticks: [...document.querySelectorAll('.legend-tick')].map((e) => e.textContent),
      legendEnds: (() => {
        const c = document.querySelector<HTMLCanvasElement>('.legend-bar')!;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, 1).data;
        return [Array.from(d.slice(0, 3)), Array.from(d.slice((c.width - 1) * 4, (c.width - 1) * 4 + 3))];
      })(),
      dead: getComputedStyle(document.querySelector('.dead-swatch')!).backgroundColor,
      status: document.querySelector('.run[data-run-id="r1"] .run-status')?.textContent,
    }));
    assert.deepEqual(dom.labels, LAYERS);
    assert.equal(dom.title, 'mnist-mlp');
    assert.deepEqual(dom.ticks, ['1e-4', '1e-3', '1e-2', '1e-1', '1']);
    assert.deepEqual(dom.legendEnds, [[...darkPalette.scale[0]!], top(darkPalette)]);
    assert.equal(dom.dead, `rgb(${darkPalette.dead.join(', ')})`);
    assert.match(dom.status!, /step 190 · 20 \/ 20/);
    await m.page.context().close();
  });

  test('hover shows layer, unit, relative deficit, IN and OUT; a dead unit says so', async () => {
    const m = await withRun(20);
    const box = (await m.page.locator('.run[data-run-id="r1"] .heatmap-canvas').boundingBox())!;
    const band = box.height / 3;
    const tip = async () => m.page.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll('.tooltip:not([hidden]) .value')].map((e) => [(e as HTMLElement).dataset['key'], e.textContent]),
    ));
    await m.page.mouse.move(box.x + box.width * (5.5 / 16), box.y + band * 1.5);
    await m.page.waitForSelector('.tooltip:not([hidden])');
    assert.deepEqual(await tip(), { layer: 'fc2', unit: '5', step: '190', 'relative deficit': '0.1', IN: '1.1', OUT: '0.9' });
    await m.page.mouse.move(box.x + box.width * (1.5 / 8), box.y + band * 0.5);
    await m.page.waitForFunction(() => document.querySelector('.tooltip [data-key="unit"]')?.textContent === '1');
    const dead = await tip();
    assert.equal(dead['layer'], 'fc1');
    assert.match(dead['relative deficit']!, /dead/);
    assert.equal(dead['IN'], '0');
    await m.page.mouse.move(box.x - 50, box.y - 50);
    await m.page.waitForSelector('.tooltip', { state: 'hidden' });
    await m.page.context().close();
  });

  test('scrubbing: keys and slider request the selected index, answers redraw, bursts coalesce', async () => {
    const m = await withRun(50);
    assert.deepEqual(await requests(m), [{ runId: 'r1', index: 49 }]);
    assert.equal(await m.page.isChecked('.follow-live'), true);
    const before = await m.cellPixel('r1', 0, 2, 8);
    await m.clearPosted();

    await m.page.focus('.step-slider');
    await m.page.keyboard.press('ArrowLeft');
    await waitRequest(m, 'r1', 48);
    assert.equal(await m.page.isChecked('.follow-live'), false, 'scrubbing back stops following live');
    assert.equal(await m.page.inputValue('.step-slider'), '48');
    await m.host(frameR1(48));
    await m.waitRendered('r1', 48);
    const after = await m.cellPixel('r1', 0, 2, 8);
    assert.notDeepEqual(after, before, 'the cell that depends on the index was redrawn');
    assert.deepEqual(after, at(darkPalette, Math.fround(0.01 + 48 / 1000)));
    const cursor = await m.page.getAttribute('.run[data-run-id="r1"] .series', 'data-cursor');
    assert.equal(cursor, '48', 'the series cursor follows the selection');

    // Keys on the page (not the slider) scrub too.
    await m.page.locator('.run-title').first().click();
    await m.page.keyboard.press('Home');
    await waitRequest(m, 'r1', 0);
    assert.equal(await m.page.inputValue('.step-slider'), '0');

    // A burst of slider input within one animation frame: one request, for where it ended.
    await m.clearPosted();
    await m.page.evaluate(() => {
      const s = document.querySelector<HTMLInputElement>('.step-slider')!;
      for (let v = 1; v <= 30; v++) {
        s.value = String(v);
        s.dispatchEvent(new Event('input'));
      }
    });
    await waitRequest(m, 'r1', 30);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await requests(m), [{ runId: 'r1', index: 30 }]);

    // A frame already seen comes from the cache: no request.
    await m.clearPosted();
    await m.page.evaluate(() => {
      const s = document.querySelector<HTMLInputElement>('.step-slider')!;
      s.value = '48';
      s.dispatchEvent(new Event('input'));
    });
    await m.waitRendered('r1', 48);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await requests(m), []);
    await m.page.context().close();
  });

  test('follow live: an appended step and its pushed frame move to the end when on, not when off', async () => {
    const m = await withRun(50);
    await m.clearPosted();
    // The frame is posted first: message events are separate tasks, and an animation frame
    // between an append and its frame would (rightly) ask for the frame.
    await m.page.evaluate(([a, f]) => {
      const sb = (window as any).__sb;
      sb.host(f);
      sb.host(a);
    }, [appendFixture('r1', 3, 50, [500]), frameR1(50)] as const);
    await m.waitRendered('r1', 50);
    assert.equal(await m.page.inputValue('.step-slider'), '50');
    assert.equal(await m.page.getAttribute('.step-slider', 'max'), '50');
    assert.deepEqual(await requests(m), [], 'the pushed frame is used, not asked for again');

    await m.page.uncheck('.follow-live');
    await m.page.evaluate(() => {
      const s = document.querySelector<HTMLInputElement>('.step-slider')!;
      s.value = '10';
      s.dispatchEvent(new Event('input'));
    });
    await waitRequest(m, 'r1', 10);
    await m.host(frameR1(10));
    await m.waitRendered('r1', 10);
    await m.page.evaluate(([a, f]) => {
      const sb = (window as any).__sb;
      sb.host(a);
      sb.host(f);
    }, [appendFixture('r1', 3, 51, [510]), frameR1(51)] as const);
    await m.page.waitForFunction(() => document.querySelector('.step-slider')?.getAttribute('max') === '51');
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(await m.page.inputValue('.step-slider'), '10');
    assert.equal(await m.page.getAttribute('.run[data-run-id="r1"] .heatmap-canvas', 'data-index'), '10');

    // Turning it back on jumps to the newest step (already cached from the push).
    await m.page.check('.follow-live');
    await m.waitRendered('r1', 51);
    assert.equal(await m.page.inputValue('.step-slider'), '51');
    await m.page.context().close();
  });

  test('play advances the selection and asks for each shown step; pause stops it', async () => {
    const m = await withRun(50);
    await m.page.focus('.step-slider');
    await m.page.keyboard.press('Home');
    await waitRequest(m, 'r1', 0);
    await m.clearPosted();
    await m.page.click('.play');
    assert.equal(await m.page.getAttribute('.play', 'aria-pressed'), 'true');
    await m.page.waitForFunction(() => Number(document.querySelector<HTMLInputElement>('.step-slider')!.value) >= 4);
    await m.page.click('.play');
    assert.equal(await m.page.getAttribute('.play', 'aria-pressed'), 'false');
    const stopped = await m.page.inputValue('.step-slider');
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(await m.page.inputValue('.step-slider'), stopped, 'paused: no more steps');
    const idx = (await requests(m)).map((r) => r.index);
    assert.ok(idx.length >= 3, `requests while playing: ${idx}`);
    assert.deepEqual(idx, [...idx].sort((a, b) => a - b), 'in increasing order');
    assert.equal(await m.page.isChecked('.follow-live'), false);
    await m.page.context().close();
  });

  test('runReset empties a run until its series comes back; notices are shown with the run name', async () => {
    const m = await withRun(20);
    await m.host({ type: 'notice', runId: 'r1', level: 'warning', message: 'line 12: malformed JSON, skipped' });
    await m.page.waitForSelector('.notice.warning');
    assert.equal(await m.page.textContent('.notice.warning span'), 'mnist-mlp: line 12: malformed JSON, skipped');
    await m.page.click('.notice .dismiss');
    assert.equal(await m.page.locator('.notice').count(), 0);

    await m.host({ type: 'runReset', runId: 'r1' });
    await m.page.waitForFunction(() => document.querySelector('.step-label')?.textContent === 'no steps yet');
    assert.equal(await m.page.getAttribute('.run[data-run-id="r1"] .heatmap-canvas', 'data-index'), null, 'old frame cleared');
    assert.equal(await m.page.isDisabled('.run[data-run-id="r1"] .export-png'), true);
    await m.clearPosted();
    await m.host(seriesFixture('r1', LAYERS, UNITS, steps(5)));
    await waitRequest(m, 'r1', 4);
    // Frames cached before the reset belong to the old series: index 4 must be asked for again.
    await m.host(frameR1(4));
    await m.waitRendered('r1', 4);
    await m.page.context().close();
  });

  test('a malformed message becomes an error notice naming the run, and the run keeps working', async () => {
    const m = await withRun(20);
    // Values for the wrong number of layers: the series cannot be laid out.
    await m.host({ type: 'seriesAppend', runId: 'r1', steps: new Float64Array([999]), times: new Float64Array([1]), values: new Float64Array(7) });
    await m.page.waitForSelector('.notice.error');
    assert.match((await m.page.textContent('.notice.error span'))!, /^mnist-mlp: could not show a "seriesAppend" message: /);
    await m.clearPosted();
    await m.page.keyboard.press('Home');
    await waitRequest(m, 'r1', 0);
    await m.host(frameR1(0));
    await m.waitRendered('r1', 0);
    await m.page.context().close();
  });

  test('export: PNG bytes decode to the heatmap canvas; CSV header and rows match the series', async () => {
    const m = await withRun(12);
    await m.page.click('.run[data-run-id="r1"] .export-png');
    await m.page.waitForFunction(() => (window as any).__sb.posted.some((p: any) => p.type === 'exportPng'));
    const png = await m.page.evaluate(async () => {
      const msg = (window as any).__sb.posted.find((p: any) => p.type === 'exportPng');
      const bytes: Uint8Array = msg.png;
      const c = document.querySelector<HTMLCanvasElement>('.run[data-run-id="r1"] .heatmap-canvas')!;
      // Decode it back and compare with the canvas, pixel for pixel, at a few cells.
      const bmp = await createImageBitmap(new Blob([bytes as BlobPart], { type: 'image/png' }));
      const off = new OffscreenCanvas(bmp.width, bmp.height);
      const ctx = off.getContext('2d')!;
      ctx.drawImage(bmp, 0, 0);
      const same = [0.1, 0.3, 0.5, 0.7, 0.9].every((fx) => [0.15, 0.5, 0.85].every((fy) => {
        const x = Math.floor(fx * c.width);
        const y = Math.floor(fy * c.height);
        const a = ctx.getImageData(x, y, 1, 1).data;
        const b = c.getContext('2d')!.getImageData(x, y, 1, 1).data;
        return a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
      }));
      return { isU8: bytes instanceof Uint8Array, head: Array.from(bytes.slice(0, 24)), name: msg.suggestedName, w: c.width, h: c.height, same };
    });
    assert.equal(png.isU8, true);
    assert.deepEqual(png.head.slice(0, 8), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
    assert.equal(String.fromCharCode(...png.head.slice(12, 16)), 'IHDR');
    const be = (o: number) => ((png.head[o]! << 24) | (png.head[o + 1]! << 16) | (png.head[o + 2]! << 8) | png.head[o + 3]!) >>> 0;
    assert.equal(be(16), png.w);
    assert.equal(be(20), png.h);
    assert.ok(png.w > 100 && png.h > 20);
    assert.equal(png.same, true, 'decoded PNG pixels equal the canvas');
    assert.equal(png.name, 'mnist-mlp-step110.png');

    await m.page.click('.run[data-run-id="r1"] .export-csv');
    await m.page.waitForFunction(() => (window as any).__sb.posted.some((p: any) => p.type === 'exportCsv'));
    const csv = (await m.posted('exportCsv'))[0];
    assert.equal(csv.suggestedName, 'mnist-mlp-series.csv');
    const lines = (csv.csv as string).trimEnd().split('\n');
    assert.equal(lines[0], CSV_HEADER);
    assert.equal(lines.length, 1 + 12 * 3);
    // Row for step index 7, layer fc2.
    const row = lines[1 + 7 * 3 + 1]!.split(',');
    assert.deepEqual(row.slice(0, 3), ['70', String(1.7e9 + 70), 'fc2']);
    assert.deepEqual(row.slice(3).map(Number), [seriesValue(7, 1, 0), seriesValue(7, 1, 1), seriesValue(7, 1, 2)]);
    await m.page.context().close();
  });

  test('clicking a cell posts openUnit when the frame has a checkpoint, and nothing otherwise', async () => {
    const m = await withRun(20, { checkpoint: 'file:///work/ckpt/step190.pt' });
    const box = (await m.page.locator('.run[data-run-id="r1"] .heatmap-canvas').boundingBox())!;
    await m.page.mouse.click(box.x + box.width * (5.5 / 16), box.y + (box.height / 3) * 1.5);
    await m.page.waitForFunction(() => (window as any).__sb.posted.some((p: any) => p.type === 'openUnit'));
    assert.deepEqual((await m.posted('openUnit'))[0], { type: 'openUnit', runId: 'r1', index: 19, layer: 'fc2', unit: 5 });
    await m.page.context().close();

    const n = await withRun(20);
    const b2 = (await n.page.locator('.run[data-run-id="r1"] .heatmap-canvas').boundingBox())!;
    await n.page.mouse.click(b2.x + b2.width * 0.3, b2.y + 5);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await n.posted('openUnit'), []);
    await n.page.context().close();
  });

  test('setState keeps sources, follow-live and the selection; a reload restores them from getState', async () => {
    const m = await withRun(50);
    assert.deepEqual(await m.state(), { sources: [{ kind: 'log', source: RUN.source }], followLive: true, selected: {} });
    await m.page.focus('.step-slider');
    for (let k = 0; k < 3; k++) await m.page.keyboard.press('ArrowLeft');
    await waitRequest(m, 'r1', 46);
    await m.page.waitForFunction(() => JSON.parse(sessionStorage.getItem('__synbal_state')!).selected?.r1 === 46);
    assert.deepEqual(await m.state(), { sources: [{ kind: 'log', source: RUN.source }], followLive: false, selected: { r1: 46 } });

    await m.page.reload();
    await m.page.waitForFunction(() => (window as any).__sb.posted.some((p: any) => p.type === 'ready'));
    assert.equal(await m.page.isChecked('.follow-live'), false);
    // Before the host re-sends the runs, the stored sources must survive (the host restores from them).
    assert.deepEqual((await m.state()).sources, [{ kind: 'log', source: RUN.source }]);
    await m.host({ type: 'runs', runs: [RUN] });
    await m.host(seriesFixture('r1', LAYERS, UNITS, steps(50)));
    await waitRequest(m, 'r1', 46);
    assert.deepEqual(await requests(m), [{ runId: 'r1', index: 46 }]);
    assert.equal(await m.page.inputValue('.step-slider'), '46');
    await m.host(frameR1(46));
    await m.waitRendered('r1', 46);
    await m.page.context().close();
  });

  test('runs side by side: one column each, the shared scrubber aligns them by step', async () => {
    const m = await openMonitor(browser, server);
    await m.host({ type: 'runs', runs: [RUN, RUN2] });
    await m.host(seriesFixture('r1', LAYERS, UNITS, steps(50, 10))); // steps 0 … 490
    await m.host(seriesFixture('r2', LAYERS, UNITS, steps(25, 20))); // steps 0 … 480
    await waitRequest(m, 'r1', 49);
    await waitRequest(m, 'r2', 24);
    const titles = await m.page.$$eval('.run .run-title', (els) => els.map((e) => e.textContent));
    assert.deepEqual(titles, ['mnist-mlp', 'mnist-mlp-wd']);
    const xs = await m.page.$$eval('.run', (els) => els.map((e) => e.getBoundingClientRect().x));
    assert.ok(xs[1]! > xs[0]! + 300, 'columns side by side');
    await m.clearPosted();
    await m.page.evaluate(() => {
      const s = document.querySelector<HTMLInputElement>('.step-slider')!;
      s.value = '21';
      s.dispatchEvent(new Event('input'));
    });
    await waitRequest(m, 'r1', 21); // step 210
    await waitRequest(m, 'r2', 10); // step 200: the last at or before 210
    const f2 = frameFixture('r2', 10, 200, [layer('fc1', 8, 1), layer('fc2', 16, 1), layer('fc3', 4, 1)]);
    await m.host(f2);
    await m.host(frameR1(21));
    await m.waitRendered('r2', 10);
    await m.waitRendered('r1', 21);
    assert.deepEqual(await m.cellPixel('r2', 1, 3, 16), top(darkPalette));
    // Removing a run asks the host; the host's new list removes the column.
    await m.page.click('.run[data-run-id="r2"] .remove-run');
    assert.deepEqual((await m.posted('removeRun'))[0], { type: 'removeRun', runId: 'r2' });
    await m.host({ type: 'runs', runs: [RUN] });
    assert.equal(await m.page.locator('.run').count(), 1);
    await m.page.click('.add-run');
    assert.deepEqual((await m.posted('addRun'))[0], { type: 'addRun' });
    await m.page.context().close();
  });

  test('theme: switching body class and variables recolours heatmap, legend and background', async () => {
    const m = await withRun(20);
    const darkTop = await m.cellPixel('r1', 0, 0, 8);
    const darkBg = await m.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.deepEqual(darkTop, top(darkPalette));
    const rendersBefore = Number(await m.page.getAttribute('.heatmap-canvas', 'data-renders'));
    await m.page.evaluate(() => {
      const vars: Record<string, string> = {
        '--vscode-editor-background': '#ffffff', '--vscode-editor-foreground': '#000000',
        '--vscode-foreground': '#3b3b3b', '--vscode-focusBorder': '#005fb8',
      };
      for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
      document.body.classList.replace('vscode-dark', 'vscode-light');
    });
    await m.page.waitForFunction((n) => Number(document.querySelector<HTMLElement>('.heatmap-canvas')!.dataset['renders']) > n, rendersBefore);
    const lightTop = await m.cellPixel('r1', 0, 0, 8);
    assert.deepEqual(lightTop, top(lightPalette));
    assert.notDeepEqual(lightTop, darkTop);
    assert.deepEqual(await m.cellPixel('r1', 0, 1, 8), [...lightPalette.dead]);
    assert.deepEqual(await m.cellPixel('r1', 1, 4, 16), [...lightPalette.scale[0]!]);
    const legendTop = await m.page.evaluate(() => Array.from(document.querySelector<HTMLCanvasElement>('.legend-bar')!.getContext('2d')!.getImageData(255, 0, 1, 1).data.slice(0, 3)));
    assert.deepEqual(legendTop, top(lightPalette));
    assert.notEqual(await m.page.evaluate(() => getComputedStyle(document.body).backgroundColor), darkBg);
    // The light map's low end is near the light background, the dark map's near the dark one.
    const dist = (a: readonly number[], b: readonly number[]) => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);
    assert.ok(dist(lightPalette.scale[0]!, LIGHT.background) < 30 && dist(darkPalette.scale[0]!, DARK.background) < 60);
    assert.ok(dist(lightPalette.scale[255]!, LIGHT.background) > 250 && dist(darkPalette.scale[255]!, DARK.background) > 250);
    await m.page.context().close();
  });

  test('a 20 × 4096 frame renders every layer band and keeps a lone bad unit visible', async () => {
    const m = await openMonitor(browser, server);
    const names = Array.from({ length: 20 }, (_, l) => `block${l}.mlp`);
    await m.host({ type: 'runs', runs: [RUN] });
    await m.host(seriesFixture('r1', names, names.map(() => 4096), steps(3)));
    await waitRequest(m, 'r1', 2);
    // Built in the page: 20 × 4096 floats are cheaper to make there than to serialise.
    await m.page.evaluate((ls) => {
      const layers = ls.map((name, l) => {
        const d = new Float32Array(4096).fill(1e-5);
        if (l === 7) d[3001] = 1; // one unit among 4096: more units than pixels, it must still show
        if (l === 3) d.fill(NaN, 0, 1024); // a dead quarter: its bins are all dead
        if (l === 4) for (let u = 0; u < 4096; u += 2) d[u] = NaN; // half dead: every bin still has a live unit
        return { name, relativeDeficit: d };
      });
      window.postMessage({ type: 'frame', frame: { runId: 'r1', index: 2, step: 20, time: 0, layers } }, '*');
    }, names);
    await m.waitRendered('r1', 2);
    const found = await m.page.evaluate(() => {
      const c = document.querySelector<HTMLCanvasElement>('.heatmap-canvas')!;
      const y = Math.floor((7.5 / 20) * c.height);
      const row = c.getContext('2d')!.getImageData(0, y, c.width, 1).data;
      const xs: number[] = [];
      for (let x = 0; x < c.width; x++) if (row[x * 4]! > 240 && row[x * 4 + 1]! > 240) xs.push(x);
      const px = (l: number, fx: number) => Array.from(c.getContext('2d')!.getImageData(Math.floor(fx * c.width), Math.floor(((l + 0.5) / 20) * c.height), 1, 1).data.slice(0, 3));
      return { xs, w: c.width, labels: document.querySelectorAll('.heatmap-label').length, deadQuarter: px(3, 0.1), liveQuarter: px(3, 0.6), halfDead: px(4, 0.1) };
    });
    assert.deepEqual(found.deadQuarter, [...darkPalette.dead], 'bins of only dead units are dead');
    assert.deepEqual(found.liveQuarter, at(darkPalette, 1e-5));
    assert.deepEqual(found.halfDead, at(darkPalette, 1e-5), 'a bin with any live unit shows it, not dead');
    assert.equal(found.labels, 20);
    assert.ok(found.w < 4096, 'more units than pixels');
    assert.ok(found.xs.length >= 1, 'the lone top-colour unit is visible');
    assert.ok(Math.abs(found.xs[0]! / found.w - 3001 / 4096) < 0.01, 'at its position along the row');
    await m.page.context().close();
  });
});
