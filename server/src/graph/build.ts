// From a checkpoint to the network the engine balances: the file's own graph where it has
// one, else a manifest or naming conventions. One builder per kind of structure.
import type { Network } from '../engine/network';
import type { Checkpoint } from '../formats/checkpoint';

export interface BuiltNetwork {
  network: Network;
  /** Facts the builder inferred or could not, for listings and reports. */
  notes: string[];
}

export function buildNetwork(cp: Checkpoint): BuiltNetwork {
  if (cp.network) return { network: cp.network, notes: [] };
  throw new Error(`${cp.path}: no network can be built from a ${cp.format} file yet`);
}
