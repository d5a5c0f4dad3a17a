// Runs the real monitor bundle (dist/webview/monitor.js) in headless Chromium, in the real
// page monitorHtml builds (CSP included), served from 127.0.0.1 like a webview resource root.
// A fake acquireVsCodeApi records what the webview posts and keeps its state across reloads.

import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { monitorHtml } from '../../webview/src/html';

export const CHROMIUM = '/usr/bin/chromium';
/** tsx compiles with esbuild's keepNames, so functions shipped to a page call __name(): give pages one. */
export const NAME_SHIM = 'globalThis.__name = (f) => f;';
const ROOT = resolve(__dirname, '../..');
const DIST = join(ROOT, 'dist/webview');

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: the webview tests need it (run: apt-get install chromium)`);
  }
  if (!existsSync(join(DIST, 'monitor.js'))) throw new Error('dist/webview/monitor.js missing: run node scripts/build.mjs');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface MonitorServer {
  origin: string;
  /** Nonce of the page last served. */
  nonce: string;
  close(): Promise<void>;
}

/** Serves the page at / (fresh nonce each time) and dist/webview/* beside it. */
export async function serveMonitor(): Promise<MonitorServer> {
  let origin = '';
  const state = { nonce: '' };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname === '/') {
      state.nonce = `n${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(monitorHtml({
        scriptUri: `${origin}/dist/webview/monitor.js`,
        styleUri: `${origin}/dist/webview/monitor.css`,
        cspSource: origin,
        nonce: state.nonce,
        title: 'Monitor under test',
      }));
      return;
    }
    const m = /^\/dist\/webview\/(monitor\.(?:js|css|js\.map))$/.exec(url.pathname);
    if (m) {
      const type = m[1]!.endsWith('.css') ? 'text/css' : m[1]!.endsWith('.js') ? 'text/javascript' : 'application/json';
      res.writeHead(200, { 'content-type': type });
      res.end(readFileSync(join(DIST, m[1]!)));
      return;
    }
    res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404).end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    get nonce() {
      return state.nonce;
    },
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

export const DARK_VARS: Record<string, string> = {
  '--vscode-editor-background': '#1e1e1e',
  '--vscode-editor-foreground': '#d4d4d4',
  '--vscode-foreground': '#cccccc',
  '--vscode-focusBorder': '#007fd4',
  '--vscode-font-family': 'sans-serif',
};

export const LIGHT_VARS: Record<string, string> = {
  '--vscode-editor-background': '#ffffff',
  '--vscode-editor-foreground': '#000000',
  '--vscode-foreground': '#3b3b3b',
  '--vscode-focusBorder': '#005fb8',
  '--vscode-font-family': 'sans-serif',
};

/** Installed before any page script: the fake webview API, a CSP violation log, a host-message poster. */
function fakeWebviewApi(init: { vars: Record<string, string>; bodyClass: string }): void {
  const w = window as unknown as Record<string, unknown>;
  const key = '__synbal_state';
  const posted: unknown[] = [];
  const violations: string[] = [];
  let acquired = false;
  document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  // The init script runs before <html> exists: apply VS Code's theme variables (on <html>) and
  // class (on <body>) as soon as each element is there, before the page's scripts run.
  let varsSet = false;
  const apply = () => {
    if (!varsSet && document.documentElement) {
      for (const [k, v] of Object.entries(init.vars)) document.documentElement.style.setProperty(k, v);
      varsSet = true;
    }
    if (varsSet && document.body) {
      document.body.classList.add(init.bodyClass);
      return true;
    }
    return false;
  };
  if (!apply()) {
    const mo = new MutationObserver(() => {
      if (apply()) mo.disconnect();
    });
    mo.observe(document, { childList: true, subtree: true });
  }
  w['acquireVsCodeApi'] = () => {
    if (acquired) throw new Error('An instance of the VS Code API has already been acquired');
    acquired = true;
    return {
      // VS Code structured-clones what is posted: do the same so anything uncloneable fails here too.
      postMessage: (m: unknown) => posted.push(structuredClone(m)),
      getState: () => {
        const s = sessionStorage.getItem(key);
        return s === null ? undefined : JSON.parse(s);
      },
      setState: (s: unknown) => sessionStorage.setItem(key, JSON.stringify(s)),
    };
  };
  const f64 = (a: unknown) => (Array.isArray(a) ? new Float64Array(a) : a);
  const f32 = (a: unknown) => (Array.isArray(a) ? new Float32Array(a) : a);
  w['__sb'] = {
    posted,
    violations,
    /** Posts a host message; plain number arrays become the typed arrays the protocol uses. */
    host(m: Record<string, any>) {
      const msg = structuredClone(m);
      const balance = (b: any) => {
        if (b) {
          b.index = f64(b.index);
          b.values = f64(b.values);
        }
      };
      if (msg.type === 'series') {
        msg.series.steps = f64(msg.series.steps);
        msg.series.times = f64(msg.series.times);
        msg.series.values = f64(msg.series.values);
        balance(msg.series.balance);
      } else if (msg.type === 'seriesAppend') {
        msg.steps = f64(msg.steps);
        msg.times = f64(msg.times);
        msg.values = f64(msg.values);
        balance(msg.balance);
      } else if (msg.type === 'frame') {
        for (const l of msg.frame.layers) {
          l.relativeDeficit = f32(l.relativeDeficit);
          if (l.in) l.in = f32(l.in);
          if (l.out) l.out = f32(l.out);
        }
      }
      window.postMessage(msg, '*');
    },
  };
}

export interface OpenOptions {
  theme?: 'dark' | 'light';
}

export interface MonitorPage {
  page: Page;
  /** Messages the webview posted, oldest first (typed arrays come back as plain objects). */
  posted(type?: string): Promise<any[]>;
  clearPosted(): Promise<void>;
  host(msg: unknown): Promise<void>;
  state(): Promise<any>;
  violations(): Promise<string[]>;
  /** Waits until the run's heatmap shows frame `index` (rendered, not just received). */
  waitRendered(runId: string, index: number): Promise<void>;
  /** Pixel [r, g, b] of a run's heatmap canvas at unit `unit` of `layer` (band centre). */
  cellPixel(runId: string, layer: number, unit: number, units: number): Promise<number[]>;
  consoleErrors: string[];
}

export async function openMonitor(browser: Browser, server: MonitorServer, opts: OpenOptions = {}): Promise<MonitorPage> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  if (process.env.SB_DEBUG) page.on("console", (m) => console.log("console:", m.text()));
  if (process.env.SB_DEBUG) page.on("pageerror", (e) => console.log("pageerror:", e));
  const theme = opts.theme ?? 'dark';
  await page.addInitScript({ content: NAME_SHIM });
  await page.addInitScript(fakeWebviewApi, { vars: theme === 'dark' ? DARK_VARS : LIGHT_VARS, bodyClass: `vscode-${theme}` });
  await page.goto(server.origin + '/');
  const mp: MonitorPage = {
    page,
    consoleErrors,
    posted: (type) => page.evaluate((t) => {
      const all = (window as any).__sb.posted as any[];
      return t ? all.filter((m) => m.type === t) : all;
    }, type),
    clearPosted: () => page.evaluate(() => void ((window as any).__sb.posted.length = 0)),
    host: (msg) => page.evaluate((m) => (window as any).__sb.host(m), msg),
    state: () => page.evaluate(() => {
      const s = sessionStorage.getItem('__synbal_state');
      return s === null ? undefined : JSON.parse(s);
    }),
    violations: () => page.evaluate(() => (window as any).__sb.violations.slice()),
    waitRendered: async (runId, index) => {
      await page.waitForFunction(
        ([id, i]) => document.querySelector<HTMLCanvasElement>(`.run[data-run-id="${id}"] .heatmap-canvas`)?.dataset['index'] === String(i),
        [runId, index] as const,
        { timeout: 5000 },
      );
    },
    cellPixel: (runId, layer, unit, units) => page.evaluate(([id, l, u, n]) => {
      const c = document.querySelector<HTMLCanvasElement>(`.run[data-run-id="${id}"] .heatmap-canvas`)!;
      const layers = c.parentElement!.querySelectorAll('.heatmap-label').length;
      const x = Math.floor(((u + 0.5) / n) * c.width);
      const y = Math.floor(((l + 0.5) / layers) * c.height);
      return Array.from(c.getContext('2d')!.getImageData(x, y, 1, 1).data.slice(0, 3));
    }, [runId, layer, unit, units] as const),
  };
  await page.waitForFunction(() => (window as any).__sb.posted.some((m: any) => m.type === 'ready'));
  return mp;
}

// ------------------------------------------------------------------ host-side fixtures

export interface SeriesFixture {
  type: 'series';
  series: { runId: string; layers: string[]; units: number[]; steps: number[]; times: number[]; values: number[] };
}

/** A series whose values are a known function of (step index, layer, kind), so tests can check rows. */
export function seriesFixture(runId: string, layers: string[], units: number[], steps: number[]): SeriesFixture {
  const values: number[] = [];
  steps.forEach((_, i) => layers.forEach((__, l) => values.push(seriesValue(i, l, 0), seriesValue(i, l, 1), seriesValue(i, l, 2))));
  return { type: 'series', series: { runId, layers, units, steps, times: steps.map((s) => 1.7e9 + s), values } };
}

export function seriesValue(i: number, l: number, k: number): number {
  return k === 0 ? (l + 1) * 10 / (i + 1) : k === 1 ? 100 + l + i * 0.5 : 3 + l + i * 0.01;
}

export function appendFixture(runId: string, nLayers: number, from: number, steps: number[]) {
  const values: number[] = [];
  steps.forEach((_, j) => {
    for (let l = 0; l < nLayers; l++) values.push(seriesValue(from + j, l, 0), seriesValue(from + j, l, 1), seriesValue(from + j, l, 2));
  });
  return { type: 'seriesAppend', runId, steps, times: steps.map((s) => 1.7e9 + s), values };
}

export interface FrameLayerFixture {
  name: string;
  relativeDeficit: number[];
  in?: number[];
  out?: number[];
}

export function frameFixture(runId: string, index: number, step: number, layers: FrameLayerFixture[], checkpoint?: string) {
  return { type: 'frame', frame: { runId, index, step, time: 1.7e9 + step, layers, ...(checkpoint ? { checkpoint } : {}) } };
}

/** A layer whose units are all `fill` except the given overrides. */
export function layer(name: string, units: number, fill: number, overrides: Record<number, number> = {}, withCosts = false): FrameLayerFixture {
  const d = Array.from({ length: units }, (_, u) => overrides[u] ?? fill);
  const l: FrameLayerFixture = { name, relativeDeficit: d };
  if (withCosts) {
    // IN/OUT consistent with the deficit: IN + OUT = 2, |IN − OUT| / 2 = d.
    l.in = d.map((v) => (Number.isNaN(v) ? 0 : 1 + v));
    l.out = d.map((v) => (Number.isNaN(v) ? 0 : 1 - v));
  }
  return l;
}
