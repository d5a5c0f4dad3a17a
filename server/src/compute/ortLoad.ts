// Loading onnxruntime-node and choosing its execution provider: the package's CPU build is
// always there; the CUDA provider only when the installed package carries it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BackendUnavailable } from './backend';

type Ort = typeof import('onnxruntime-node');

export function loadOrt(): Ort {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('onnxruntime-node') as Ort;
  } catch (e) {
    throw new BackendUnavailable('onnxruntime', `onnxruntime-node cannot be loaded (${(e as Error).message.split('\n')[0]})`);
  }
}

/** The provider for a device: `cpu`, or `cuda` when the package lists it (bundled or installed). */
export function ortProvider(ort: Ort, device: string): string {
  if (device === 'cpu') return 'cpu';
  if (device === 'mps') throw new BackendUnavailable('onnxruntime', 'onnxruntime-node has no MPS provider');
  const list = (ort as unknown as { listSupportedBackends?: () => { name: string; bundled: boolean }[] }).listSupportedBackends?.() ?? [];
  const cuda = list.find((b) => b.name === 'cuda');
  if (!cuda) throw new BackendUnavailable('onnxruntime', 'this onnxruntime-node build has no CUDA execution provider');
  // Not bundled: the provider library is a separate download, present only if it was installed.
  if (!cuda.bundled && !cudaProviderInstalled()) {
    throw new BackendUnavailable('onnxruntime', 'the CUDA execution provider is not installed (npm install onnxruntime-node --onnxruntime-node-install=cuda12)');
  }
  return 'cuda';
}

function cudaProviderInstalled(): boolean {
  try {
    const root = dirname(require.resolve('onnxruntime-node/package.json'));
    const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    return existsSync(join(root, 'bin', 'napi-v6', process.platform, process.arch, lib));
  } catch {
    return false;
  }
}
