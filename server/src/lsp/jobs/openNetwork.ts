// How the analysis worker opens files: as the CLI does (graph/open.ts), one try per job — the
// scheduler retries a file that changed while it was read once it has settled.
import { openNetworkFile, type OpenedNetwork } from '../../graph/open';

export { UnknownFormatError } from '../../formats/registry';
export type { OpenedNetwork } from '../../graph/open';

/** How the worker opens files; tests and benchmarks substitute their own. */
export type NetworkOpener = (path: string, activation: string) => OpenedNetwork;

export function openNetwork(path: string, activation: string): OpenedNetwork {
  return openNetworkFile(path, { activation });
}
