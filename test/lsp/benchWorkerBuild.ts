// Bundles test/lsp/benchWorker.ts as scripts/build.mjs bundles the real worker, into dist/test/
// (inside the repository, so that the packages left external resolve from node_modules).
import { join } from 'node:path';
import { build } from 'esbuild';

export async function buildBenchWorker(): Promise<string> {
  const outfile = join(__dirname, '..', '..', 'dist', 'test', 'lspBenchWorker.js');
  await build({
    entryPoints: [join(__dirname, 'benchWorker.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
    external: ['onnxruntime-node', 'h5wasm'],
  });
  return outfile;
}
