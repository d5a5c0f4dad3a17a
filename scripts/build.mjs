// One build for every bundle: each entry point becomes one CommonJS file in dist/.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));

const entries = {
  cli: 'server/src/bin/synbal.ts',
  bench: 'server/src/bench/main.ts',
  computeWorker: 'server/src/engine/parallelWorker.ts',
  server: 'server/src/server.ts',
  lspWorker: 'server/src/lsp/worker.ts',
  extension: 'client/src/extension.ts',
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
console.log(`built ${Object.keys(entries).join(', ')} in ${Date.now() - started} ms`);
