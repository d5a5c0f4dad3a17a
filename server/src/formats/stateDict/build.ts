// State dicts (a bare .pt, .safetensors, .npz) have no graph: their layers come from a sidecar
// manifest, else from the tensor names. Shared by the formats that hold state dicts.
import { FileError, fail } from '../../errors/fileError';
import type { Checkpoint } from '../core/checkpoint';
import type { BuiltNetwork, NetworkOptions, StateDictHints } from '../core/format';
import { proposeTopology } from './conventions';
import { topologyToNetwork, type Topology } from './layerSpec';
import { readManifestFor } from './manifest';


/** The layer list a state dict would be built from: its manifest, or the proposal from names. */
export function topologyFor(cp: Checkpoint, hints: StateDictHints = {}): Topology | undefined {
  return readManifestFor(cp.path) ?? proposeTopology(cp, hints.modules ?? [], hints.pickled ?? false);
}

export function stateDictToNetwork(cp: Checkpoint, opts: NetworkOptions = {}, hints: StateDictHints = {}): BuiltNetwork {
  const topo = topologyFor(cp, hints);
  if (!topo) fail(cp.path, `no layers could be recognised from the tensor names; describe them in a manifest (${cp.path}.synbal.json)`);
  try {
    return { network: topologyToNetwork(cp, topo, { defaultActivation: opts.defaultActivation }), notes: topo.notes };
  } catch (e) {
    if (e instanceof FileError) throw e;
    // A manifest's mistakes are reported against the manifest, others against the checkpoint.
    const msg = (e as Error).message;
    if (msg.startsWith(`${topo.source}: `)) throw new FileError(topo.source, msg.slice(topo.source.length + 2));
    throw new FileError(cp.path, msg.startsWith(`${cp.path}: `) ? msg.slice(cp.path.length + 2) : msg);
  }
}
