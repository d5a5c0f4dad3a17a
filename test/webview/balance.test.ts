// Balance events in the monitor webview (headless Chromium): a tick on every per-layer series
// panel and under the scrubber at each balance step, in the theme's colour; hovering a tick
// shows ΔR and R before → after; a run without events has no ticks.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { BALANCE_FIELDS } from '../../server/src/contract/monitor';
import { appendFixture, frameFixture, launchChromium, layer, openMonitor, seriesFixture, serveMonitor, type MonitorPage, type MonitorServer } from './harness';

const RUN = { id: 'r1', label: 'balanced every 150', kind: 'log', source: 'file:///work/runs/b.jsonl' };
const LAYERS = ['fc1', 'fc2'];
const UNITS = [8, 4];
const N = 50;
const STEPS = Array.from({ length: N }, (_, i) => i * 10);
/** Events at series indices 5, 20, 35 (steps 50, 200, 350). */
const EVENTS = [
  { index: 5, v: [12.5, 40, 27.5, 9, 3e-8, 1] },
  { index: 20, v: [2.25, 30, 27.75, 4, 5e-8, 1] },
  { index: 35, v: [0.125, 28, 27.875, 2, NaN, 0] },
];
/** The fallback tick colour on a dark theme without --vscode-charts-green (colorScale.balanceColor). */
const DARK_TICK = [137, 209, 133];
/** The plot's padding in series.ts (PAD) and the tick's top row. */
const PAD_LEFT = 46;
const PAD_RIGHT = 8;
const TICK_Y = 6 + 1 + 2;

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

function balance(events: typeof EVENTS) {
  return { index: events.map((e) => e.index), values: events.flatMap((e) => e.v) };
}

async function open(events: typeof EVENTS | null): Promise<MonitorPage> {
  const m = await openMonitor(browser, server, { theme: 'dark' });
  await m.host({ type: 'runs', runs: [RUN] });
  const s = seriesFixture('r1', LAYERS, UNITS, STEPS) as any;
  if (events) s.series.balance = balance(events);
  await m.host(s);
  await m.page.waitForFunction(() => (window as any).__sb.posted.some((p: any) => p.type === 'requestFrame'));
  await m.host(frameFixture('r1', N - 1, STEPS[N - 1]!, [layer('fc1', 8, 0.01), layer('fc2', 4, 0.02)]));
  await m.waitRendered('r1', N - 1);
  return m;
}

/** x (CSS px = canvas px at dpr 1) of the columns on row `y` of series panel `panel` whose colour is `rgb`, grouped into runs. */
async function tickColumns(m: MonitorPage, panel: number, rgb: number[], y = TICK_Y): Promise<{ x: number; width: number }[]> {
  return m.page.evaluate(([p, c, yy]) => {
    const canvas = document.querySelectorAll<HTMLCanvasElement>('.run[data-run-id="r1"] .series-base')[p]!;
    const d = canvas.getContext('2d')!.getImageData(0, yy, canvas.width, 1).data;
    const out: { x: number; width: number }[] = [];
    for (let x = 0; x < canvas.width; x++) {
      const hit = d[x * 4] === c[0] && d[x * 4 + 1] === c[1] && d[x * 4 + 2] === c[2];
      if (!hit) continue;
      const last = out.at(-1);
      if (last && last.x + last.width === x) last.width++;
      else out.push({ x, width: 1 });
    }
    return out;
  }, [panel, rgb, y] as const);
}

/** Where series.ts puts step `step`: the axis runs from 0 to 500 (the nice ceiling of 490). */
async function expectedX(m: MonitorPage, step: number, x1 = 500): Promise<number> {
  const w = await m.page.evaluate(() => document.querySelector<HTMLCanvasElement>('.run[data-run-id="r1"] .series-base')!.width);
  return Math.floor(PAD_LEFT + (step / x1) * (w - PAD_LEFT - PAD_RIGHT));
}

async function tooltip(m: MonitorPage): Promise<Record<string, string>> {
  return m.page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('.tooltip:not([hidden]) .value')].map((e) => [(e as HTMLElement).dataset['key'], e.textContent ?? '']),
  ));
}

describe('balance events in the monitor webview (headless Chromium)', () => {
  test('a tick at each balance step on every series panel, in the theme colour; tooltip shows ΔR and R before → after', async () => {
    const m = await open(EVENTS);
    assert.equal(await m.page.getAttribute('.run[data-run-id="r1"] .series', 'data-balance-ticks'), '3');
    for (let panel = 0; panel < 3; panel++) {
      const cols = await tickColumns(m, panel, DARK_TICK);
      const want = await Promise.all([50, 200, 350].map((s) => expectedX(m, s)));
      assert.deepEqual(cols.map((c) => c.x + 1), want, `panel ${panel}: ticks centred on steps 50, 200, 350`);
      assert.ok(cols.every((c) => c.width === 3));
    }
    // Hover the second tick.
    const box = (await m.page.locator('.run[data-run-id="r1"] .series-base').first().boundingBox())!;
    const x = await expectedX(m, 200);
    await m.page.mouse.move(box.x + x + 0.5, box.y + 30);
    await m.page.waitForSelector('.tooltip:not([hidden])');
    assert.deepEqual(await tooltip(m), { 'balanced at step': '200', 'ΔR': '2.25', R: '30 → 27.75', sweeps: '4', 'max deficit after': '5.00e-8', converged: 'yes' });
    // Away from a tick: no tooltip.
    await m.page.mouse.move(box.x + x + 40, box.y + 30);
    await m.page.waitForSelector('.tooltip', { state: 'hidden' });
    assert.deepEqual(m.consoleErrors, []);
    assert.deepEqual(await m.violations(), []);
    await m.page.context().close();
  });

  test('the scrubber strip marks the events; hovering one names the run and its ΔR', async () => {
    const m = await open(EVENTS);
    assert.equal(await m.page.getAttribute('.balance-strip', 'data-ticks'), '3');
    const strip = await m.page.evaluate((c) => {
      const canvas = document.querySelector<HTMLCanvasElement>('.balance-strip')!;
      const d = canvas.getContext('2d')!.getImageData(0, 3, canvas.width, 1).data;
      const xs: number[] = [];
      for (let x = 0; x < canvas.width; x++) if (d[x * 4] === c[0] && d[x * 4 + 1] === c[1] && d[x * 4 + 2] === c[2] && d[x * 4 + 3] === 255) xs.push(x);
      return { xs, width: canvas.width };
    }, DARK_TICK);
    // Three 3-px marks at index/(N − 1) along the track (8 px in from each end).
    const centres = [5, 20, 35].map((i) => Math.floor(8 + (i / (N - 1)) * (strip.width - 16)));
    assert.deepEqual(strip.xs, centres.flatMap((c) => [c - 1, c, c + 1]));
    const box = (await m.page.locator('.balance-strip').boundingBox())!;
    await m.page.mouse.move(box.x + centres[0]! + 0.5, box.y + 3);
    await m.page.waitForSelector('.tooltip:not([hidden])');
    const tip = await tooltip(m);
    assert.equal(tip['run'], 'balanced every 150');
    assert.equal(tip['ΔR'], '12.5');
    assert.equal(tip['R'], '40 → 27.5');
    await m.page.context().close();
  });

  test('selecting a balance step says so in the run status; converged false and a missing max deficit show as such', async () => {
    const m = await open(EVENTS);
    await m.page.focus('.step-slider');
    await m.page.keyboard.press('Home');
    for (let i = 0; i < 35; i++) await m.page.keyboard.press('ArrowRight');
    await m.page.waitForFunction(() => /balanced, ΔR 0\.125/.test(document.querySelector('.run[data-run-id="r1"] .run-status')?.textContent ?? ''));
    const box = (await m.page.locator('.run[data-run-id="r1"] .series-base').nth(1).boundingBox())!;
    await m.page.mouse.move(box.x + (await expectedX(m, 350)) + 0.5, box.y + 40);
    await m.page.waitForSelector('.tooltip:not([hidden])');
    const tip = await tooltip(m);
    assert.equal(tip['converged'], 'no');
    assert.equal(tip['max deficit after'], undefined);
    await m.page.keyboard.press('ArrowRight');
    await m.page.waitForFunction(() => !/balanced/.test(document.querySelector('.run[data-run-id="r1"] .run-status')?.textContent ?? ''));
    await m.page.context().close();
  });

  test('no events, no ticks: no tick-coloured pixels, an empty strip', async () => {
    const m = await open(null);
    assert.equal(await m.page.getAttribute('.run[data-run-id="r1"] .series', 'data-balance-ticks'), '0');
    for (let panel = 0; panel < 3; panel++) assert.deepEqual(await tickColumns(m, panel, DARK_TICK), []);
    assert.equal(await m.page.getAttribute('.balance-strip', 'data-ticks'), '0');
    assert.equal(await m.page.evaluate(() => getComputedStyle(document.querySelector('.balance-strip')!).visibility), 'hidden');
    await m.page.context().close();
  });

  test('an appended event is ticked; the tick follows the theme (--vscode-charts-green)', async () => {
    const m = await open(EVENTS.slice(0, 1));
    // Within the axes (step 495 ≤ 500): only the new step is drawn, its tick with it.
    const a1 = appendFixture('r1', LAYERS.length, N, [495]) as any;
    a1.balance = { index: [N], values: [0.75, 27.5, 26.75, 3, 1e-8, 1] };
    await m.host(a1);
    await m.page.waitForFunction(() => document.querySelector('.run[data-run-id="r1"] .series')?.getAttribute('data-balance-ticks') === '2');
    assert.deepEqual((await tickColumns(m, 0, DARK_TICK)).map((c) => c.x + 1), [await expectedX(m, 50), await expectedX(m, 495)]);
    const a = appendFixture('r1', LAYERS.length, N + 1, [500, 510]) as any;
    a.balance = { index: [N + 2], values: [0.5, 27, 26.5, 3, 1e-8, 1] };
    assert.equal(a.balance.values.length, BALANCE_FIELDS);
    await m.host(a);
    await m.page.waitForFunction(() => document.querySelector('.run[data-run-id="r1"] .series')?.getAttribute('data-balance-ticks') === '3');
    await m.page.waitForFunction(() => document.querySelector('.balance-strip')?.getAttribute('data-ticks') === '3');
    // Steps now reach 510: the axis end became 1000 (nice ceiling), so everything was redrawn.
    const cols = await tickColumns(m, 0, DARK_TICK);
    assert.deepEqual(cols.map((c) => c.x + 1), [await expectedX(m, 50, 1000), await expectedX(m, 495, 1000), await expectedX(m, 510, 1000)]);
    await m.page.evaluate(() => document.documentElement.style.setProperty('--vscode-charts-green', '#ff00ff'));
    await m.page.waitForFunction(() => {
      const c = document.querySelector<HTMLCanvasElement>('.run[data-run-id="r1"] .series-base')!;
      const d = c.getContext('2d')!.getImageData(0, 9, c.width, 1).data;
      for (let x = 0; x < c.width; x++) if (d[x * 4] === 255 && d[x * 4 + 1] === 0 && d[x * 4 + 2] === 255) return true;
      return false;
    });
    assert.equal((await tickColumns(m, 0, [255, 0, 255])).length, 3);
    assert.deepEqual(await tickColumns(m, 0, DARK_TICK), []);
    await m.page.context().close();
  });
});
