// One build for every bundle: each entry point becomes one CommonJS file in dist/.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));

const entries = {
  cli: 'server/src/bin/synbal.ts',
  bench: 'server/src/bench/main.ts',
  computeWorker: 'server/src/threads/parallelWorker.ts',
  computeBridge: 'server/src/compute/bridgeWorker.ts',
  server: 'server/src/server.ts',
  lspWorker: 'server/src/lsp/worker.ts',
  extension: 'client/src/extension.ts',
  // The TF.js balance logger users require from their training scripts (takes their model;
  // imports no tf of its own), and the monitor demo (bundles the pure-JS @tensorflow/tfjs).
  tfjsLogger: 'server/src/monitor/tfjsLogger.ts',
  demoTrain: 'server/src/monitor/demoTrain.ts',
};

const watch = process.argv.includes('--watch');
const started = Date.now();
await build({
  entryPoints: entries,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: watch ? 'info' : 'warning',
  banner: { js: '#!/usr/bin/env node' },
  // Native (onnxruntime) and ESM-only WebAssembly (h5wasm) packages load from node_modules;
  // `vscode` is the editor's own API, there only inside the extension host.
  external: ['onnxruntime-node', 'h5wasm', 'vscode'],
  define: { 'process.env.SYNBAL_VERSION': JSON.stringify(version) },
});
// The training monitor's webview runs in the editor's browser sandbox: one classic script
// (iife) plus its stylesheet, both loaded by the page webview/src/html.ts builds.
await build({
  entryPoints: { monitor: 'webview/src/main.ts' },
  outdir: 'dist/webview',
  bundle: true,
  platform: 'browser',
  target: 'chrome120',
  format: 'iife',
  sourcemap: true,
  logLevel: watch ? 'info' : 'warning',
});
mkdirSync('dist/webview', { recursive: true });
copyFileSync('webview/src/monitor.css', 'dist/webview/monitor.css');
console.log(`built ${Object.keys(entries).join(', ')}, webview/monitor in ${Date.now() - started} ms`);
