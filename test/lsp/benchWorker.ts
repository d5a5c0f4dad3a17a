// The server's worker, plus one test-only way to open a model: a `*.synthetic` file names an
// MLP ({"sizes": [...], "dtype": "float32"}) that is generated in the worker. It lets the
// latency benchmark analyse a 70M-parameter network without a 280 MB fixture on disk.
import { readFileSync } from 'node:fs';
import { mlp } from '../../server/src/examples/networks';
import { stampOf } from '../../server/src/formats/core/checkpoint';
import { networkJsonFormat } from '../../server/src/formats/networkJson';
import { openNetwork } from '../../server/src/app/openNetwork';
import { runWorker } from '../../server/src/lsp/workerMain';
import type { DType } from '../../server/src/tensor/dtype';

runWorker((path, activation) => {
  if (!path.endsWith('.synthetic')) return openNetwork(path, activation);
  const spec = JSON.parse(readFileSync(path, 'utf8')) as { sizes: number[]; dtype?: DType; seed?: number };
  const network = mlp({ name: `synthetic mlp ${spec.sizes.join('-')}`, sizes: spec.sizes, dtype: spec.dtype ?? 'float32', seed: spec.seed ?? 1 });
  return {
    format: { ...networkJsonFormat, id: 'synthetic', description: 'synthetic MLP generated in the worker (tests only)' },
    checkpoint: { path, format: 'synthetic', tensors: [], files: [stampOf(path)], warnings: [], network },
    network,
    notes: ['generated in the worker from the sizes in the file (a test-only format)'],
  };
});
