// Browser benchmark of the monitor webview in headless Chromium (npm run bench:webview):
//  - render: one 20 × 4096 frame through HeatmapView.render (bin, LUT, putImageData, scaled
//    drawImage, separators), against a baseline of one putImageData + drawImage of the same
//    pixel count, in the same page;
//  - scrub: a 10,000-step, 20-layer run; one scrub step = slider input (select + cursor) and the
//    flush that posts the requestFrame; also scrubbing over cached frames (which re-renders).
// Each timed call ends with a 1-pixel getImageData so the canvas work is rasterised inside it.

import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { launchChromium, NAME_SHIM } from './harness';

const ROOT = join(__dirname, '..', '..');

interface Stats { median: number; p95: number; min: number; n: number }

async function main(): Promise<void> {
  const bundle = await build({
    entryPoints: [join(__dirname, 'benchEntry.ts')],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    minify: false,
  });
  const code = bundle.outputFiles[0]!.text;
  const browser = await launchChromium();
  const results: Record<string, unknown> = {};
  try {
    for (const cfg of [
      { name: '1000 css px, dpr 1', cssWidth: 1000, dpr: 1 },
      { name: '1600 css px, dpr 2', cssWidth: 1600, dpr: 2 },
    ]) {
      const context = await browser.newContext({ viewport: { width: cfg.cssWidth + 200, height: 900 }, deviceScaleFactor: cfg.dpr });
      await context.addInitScript({ content: NAME_SHIM });
      const page = await context.newPage();
      await page.setContent('<!DOCTYPE html><html><body class="vscode-dark"><div id="app"></div></body></html>');
      await page.addScriptTag({ content: code });
      results[`render ${cfg.name}`] = await page.evaluate(({ cssWidth, runs }) => {
        const B = (window as any).__bench;
        const palette = B.buildPalette({ kind: 'dark', background: [30, 30, 30], foreground: [204, 204, 204], accent: [0, 127, 212] });
        const view = new B.HeatmapView();
        document.body.append(view.element);
        view.setWidth(cssWidth);
        const L = 20;
        const U = 4096;
        let seed = 1;
        const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
        const frames = Array.from({ length: 4 }, (_, f) => ({
          runId: 'r', index: f, step: f, time: 0,
          layers: Array.from({ length: L }, (_, l) => {
            const d = new Float32Array(U);
            for (let u = 0; u < U; u++) d[u] = rnd() < 0.01 ? NaN : 10 ** (-5 * rnd());
            return { name: `block${l}`, relativeDeficit: d };
          }),
        }));
        const color = (l: number) => B.layerColor(l, palette.theme);
        const ctx = view.canvas.getContext('2d');
        const flushRaster = (c: CanvasRenderingContext2D) => c.getImageData(0, 0, 1, 1);
        for (let i = 0; i < 8; i++) { view.render(frames[i % 4], palette, color); flushRaster(ctx); }
        const render: number[] = [];
        for (let i = 0; i < runs; i++) {
          const t0 = performance.now();
          view.render(frames[i % 4], palette, color);
          flushRaster(ctx);
          render.push(performance.now() - t0);
        }
        // Baseline: the same bins × layers image and the same scaled copy to the same canvas, nothing else.
        const bins = Math.min(U, view.canvas.width);
        const src = document.createElement('canvas');
        src.width = bins;
        src.height = L;
        const sctx = src.getContext('2d')!;
        const img = new ImageData(bins, L);
        new Uint32Array(img.data.buffer).fill(0xff336699);
        const dst = document.createElement('canvas');
        dst.width = view.canvas.width;
        dst.height = view.canvas.height;
        document.body.append(dst);
        const dctx = dst.getContext('2d', { alpha: false })!;
        dctx.imageSmoothingEnabled = false;
        for (let i = 0; i < 8; i++) { sctx.putImageData(img, 0, 0); dctx.drawImage(src, 0, 0, bins, L, 0, 0, dst.width, dst.height); flushRaster(dctx); }
        const baseline: number[] = [];
        for (let i = 0; i < runs; i++) {
          const t0 = performance.now();
          img.data[0] = i & 255; // a changed image, as each frame is
          sctx.putImageData(img, 0, 0);
          dctx.drawImage(src, 0, 0, bins, L, 0, 0, dst.width, dst.height);
          flushRaster(dctx);
          baseline.push(performance.now() - t0);
        }
        return { render, baseline, canvas: [view.canvas.width, view.canvas.height], bins };
      }, { cssWidth: cfg.cssWidth, runs: 60 });
      await context.close();
    }

    const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
    await context.addInitScript({ content: NAME_SHIM });
    const page = await context.newPage();
    await page.setContent('<!DOCTYPE html><html><body class="vscode-dark"><div id="app"></div></body></html>');
    await page.addStyleTag({ path: join(ROOT, 'dist/webview/monitor.css') });
    await page.addScriptTag({ content: code });
    results['scrub'] = await page.evaluate(async ({ steps, layers, units, scrubs }) => {
      const B = (window as any).__bench;
      let posted = 0;
      const api = { postMessage: () => void posted++, getState: () => undefined, setState: () => {} };
      const monitor = new B.Monitor(document.getElementById('app'), api);
      monitor.handle({ type: 'runs', runs: [{ id: 'r', label: 'bench', kind: 'log', source: 'file:///bench' }] });
      const values = new Float64Array(steps * layers * 3);
      for (let i = 0; i < steps; i++) for (let l = 0; l < layers; l++) {
        const o = (i * layers + l) * 3;
        values[o] = (l + 1) * 100 / (i + 1) * (1 + 0.2 * Math.sin(i / 37 + l));
        values[o + 1] = 1000 + l * 10 + i * 0.01;
        values[o + 2] = 5 + l + Math.sin(i / 100);
      }
      const stepArr = Float64Array.from({ length: steps }, (_, i) => i * 10);
      monitor.handle({ type: 'series', series: { runId: 'r', layers: Array.from({ length: layers }, (_, l) => `block${l}`), units: Array(layers).fill(units), steps: stepArr, times: stepArr, values } });
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50)));
      const slider = document.querySelector<HTMLInputElement>('.step-slider')!;
      const overlay = document.querySelector<HTMLCanvasElement>('.series-overlay')!.getContext('2d')!;
      const heat = document.querySelector<HTMLCanvasElement>('.heatmap-canvas')!.getContext('2d')!;
      const base = document.querySelector<HTMLCanvasElement>('.series-base')!.getContext('2d')!;
      // Canvas drawing is deferred until read or painted: read every canvas a step may touch.
      const flushRaster = () => {
        overlay.getImageData(0, 0, 1, 1);
        heat.getImageData(0, 0, 1, 1);
        base.getImageData(0, 0, 1, 1);
      };
      // Series drawn once (what a new series or an append costs): force it by re-sending.
      const seriesDraw: number[] = [];
      for (let k = 0; k < 5; k++) {
        monitor.handle({ type: 'runReset', runId: 'r' });
        monitor.handle({ type: 'series', series: { runId: 'r', layers: Array.from({ length: layers }, (_, l) => `block${l}`), units: Array(layers).fill(units), steps: stepArr, times: stepArr, values } });
        const t0 = performance.now();
        monitor.flushNow();
        flushRaster();
        seriesDraw.push(performance.now() - t0);
      }
      // Live: one step appended (following live) draws only the new segment, moves the cursor, asks for the frame.
      const appends: number[] = [];
      for (let k = 0; k < 60; k++) {
        const i = steps + k;
        const v = new Float64Array(layers * 3);
        for (let l = 0; l < layers; l++) {
          v[l * 3] = (l + 1) * 100 / (i + 1);
          v[l * 3 + 1] = 1000 + l * 10 + i * 0.01;
          v[l * 3 + 2] = 5 + l + Math.sin(i / 100);
        }
        const t0 = performance.now();
        monitor.handle({ type: 'seriesAppend', runId: 'r', steps: new Float64Array([i * 10]), times: new Float64Array([i * 10]), values: v });
        monitor.flushNow();
        flushRaster();
        appends.push(performance.now() - t0);
      }
      let seed = 7;
      const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
      const scrubOnce = (i: number) => {
        const t0 = performance.now();
        slider.value = String(i);
        slider.dispatchEvent(new Event('input'));
        monitor.flushNow();
        flushRaster();
        return performance.now() - t0;
      };
      // Uncached: every step is new, so each posts a requestFrame.
      const before = posted;
      const uncached: number[] = [];
      let pos = 5000;
      for (let k = 0; k < scrubs; k++) {
        pos = Math.max(0, Math.min(steps - 1, pos + Math.round((rnd() - 0.5) * 400)));
        uncached.push(scrubOnce(pos));
      }
      const requests = posted - before;
      // Cached: 40 frames answered up front, scrubbing among them re-renders the heatmap each time.
      const frame = (index: number) => ({
        runId: 'r', index, step: index * 10, time: 0,
        layers: Array.from({ length: layers }, (_, l) => {
          const d = new Float32Array(units);
          for (let u = 0; u < units; u++) d[u] = 10 ** (-5 * rnd());
          return { name: `block${l}`, relativeDeficit: d };
        }),
      });
      for (let i = 0; i < 40; i++) monitor.handle({ type: 'frame', frame: frame(100 + i) });
      const cached: number[] = [];
      for (let k = 0; k < scrubs; k++) cached.push(scrubOnce(100 + (k % 40)));
      const heatmap = document.querySelector<HTMLCanvasElement>('.heatmap-canvas')!;
      return { seriesDraw, appends, uncached, cached, requests, scrubs, heatmapCanvas: [heatmap.width, heatmap.height] };
    }, { steps: 10_000, layers: 20, units: 4096, scrubs: 200 });
    await context.close();
  } finally {
    await browser.close();
  }

  const stats = (xs: number[]): Stats => {
    const s = [...xs].sort((a, b) => a - b);
    const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))]!;
    return { median: q(0.5), p95: q(0.95), min: s[0]!, n: s.length };
  };
  const f = (v: number) => v.toFixed(2);
  const rows: string[] = ['| measurement | median ms | p95 ms | min ms | n | note |', '|---|---:|---:|---:|---:|---|'];
  const json: Record<string, unknown> = { chromium: '/usr/bin/chromium', cpus: cpus().length, cpuModel: cpus()[0]?.model, date: new Date().toISOString() };
  for (const [name, r] of Object.entries(results)) {
    if (name.startsWith('render')) {
      const x = r as { render: number[]; baseline: number[]; canvas: number[]; bins: number };
      const rs = stats(x.render);
      const bs = stats(x.baseline);
      const ratio = rs.median / bs.median;
      rows.push(`| ${name}: 20 × 4096 frame → ${x.canvas[0]}×${x.canvas[1]} canvas (${x.bins} bins) | ${f(rs.median)} | ${f(rs.p95)} | ${f(rs.min)} | ${rs.n} | ${ratio.toFixed(2)}× baseline; target ≤ 16 ms: ${rs.median <= 16 ? 'met' : 'MISSED'} |`);
      rows.push(`| ${name}: baseline putImageData + drawImage, same pixels | ${f(bs.median)} | ${f(bs.p95)} | ${f(bs.min)} | ${bs.n} | |`);
      json[name] = { frame: '20 layers × 4096 units', canvas: x.canvas, bins: x.bins, render: rs, baseline: bs, ratioToBaseline: ratio, targetMs: 16, met: rs.median <= 16 };
    } else {
      const x = r as { seriesDraw: number[]; appends: number[]; uncached: number[]; cached: number[]; requests: number; scrubs: number; heatmapCanvas: number[] };
      const sd = stats(x.seriesDraw);
      const ap = stats(x.appends);
      const un = stats(x.uncached);
      const ca = stats(x.cached);
      rows.push(`| series draw, 10,000 steps × 20 layers × 3 panels (once per data change) | ${f(sd.median)} | ${f(sd.p95)} | ${f(sd.min)} | ${sd.n} | |`);
      rows.push(`| live append of 1 step to that series (following live): new segment + cursor + requestFrame | ${f(ap.median)} | ${f(ap.p95)} | ${f(ap.min)} | ${ap.n} | axes padded: a full redraw only when they grow |`);
      rows.push(`| scrub step, frame not cached: select + cursor + requestFrame | ${f(un.median)} | ${f(un.p95)} | ${f(un.min)} | ${un.n} | ${x.requests} requests for ${x.scrubs} steps |`);
      rows.push(`| scrub step, frame cached: select + cursor + heatmap render (${x.heatmapCanvas.join('×')} canvas) | ${f(ca.median)} | ${f(ca.p95)} | ${f(ca.min)} | ${ca.n} | |`);
      json['scrub'] = { steps: 10_000, layers: 20, seriesDraw: sd, liveAppend: ap, heatmapCanvas: x.heatmapCanvas, uncached: un, cached: ca, requests: x.requests, scrubs: x.scrubs };
    }
  }
  json['loadAverage'] = loadavg();
  console.log(`Monitor webview benchmark — headless Chromium, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  console.log(rows.join('\n'));
  writeFileSync(join(ROOT, 'bench-webview-results.json'), JSON.stringify(json, null, 2) + '\n');
  console.log('\nwrote bench-webview-results.json');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
