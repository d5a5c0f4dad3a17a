// Where a request's kernels run: the backend its compute spec names, chosen for the network's size.
import type { ComputeBackend, DeviceSetting } from '../compute/backend';
import { selectBackend } from '../compute/select';
import { parameterCount, type Network } from '../engine/network';
import type { ComputeSpec } from './requests';

export interface ChosenBackend {
  backend: ComputeBackend;
  /** Why `auto` stayed on the CPU, when it did. */
  note?: string;
}

/**
 * `fallback` is the device when the spec names none: checking reads each weight once, which a
 * GPU cannot win after an upload, so front ends keep checks on the CPU unless asked.
 */
export function backendFor(spec: Partial<ComputeSpec> | undefined, network: Network, fallback: DeviceSetting = 'auto'): ChosenBackend {
  const sel = selectBackend({ device: spec?.device ?? fallback, python: spec?.python || undefined, backend: spec?.backend }, parameterCount(network));
  return { backend: sel.backend, note: sel.note };
}
