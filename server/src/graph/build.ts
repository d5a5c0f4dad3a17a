// From a checkpoint to the network the engine balances: the file's own network or graph where
// it has one, else a sidecar manifest, else naming conventions. One builder per structure.
import type { Network } from '../engine/network';
import type { Checkpoint } from '../formats/checkpoint';
import { proposeTopology, type ModuleHint } from './conventions';
import { topologyToNetwork, type Topology } from './layerSpec';
import { readManifestFor } from './manifest';
import { kerasToNetwork } from './keras';
import { onnxToNetwork } from '../formats/onnx/network';
import { tfjsToNetwork } from './tfjs';
import { isPickleStructure, moduleHints } from './pickleHints';

export interface BuiltNetwork {
  network: Network;
  /** Where the topology came from, and what was inferred or could not be. */
  notes: string[];
}

export interface BuildOptions {
  /** Activation for hidden layers whose activation the file does not state (a setting). */
  defaultActivation?: string;
  /** Module list of a pickled nn.Module (default: from a PyTorch reader's structure). */
  moduleHints?: (cp: Checkpoint) => ModuleHint[];
}

/** Formats that carry their own graph, by format id. */
const GRAPH_BUILDERS: Record<string, (cp: Checkpoint) => BuiltNetwork> = {
  'keras-h5': kerasToNetwork,
  keras: kerasToNetwork,
  onnx: onnxToNetwork,
  tfjs: tfjsToNetwork,
};

/** Whether the file states its own graph (then manifests and conventions do not apply). */
export function hasOwnGraph(cp: Checkpoint): boolean {
  return cp.network !== undefined || cp.format in GRAPH_BUILDERS;
}

/** The layer list a state dict would be built from: its manifest, or the proposal from names. */
export function topologyFor(cp: Checkpoint, opts: BuildOptions = {}): Topology | undefined {
  return readManifestFor(cp.path) ?? proposeTopology(cp, (opts.moduleHints ?? moduleHints)(cp), isPickleStructure(cp.structure));
}

export function buildNetwork(cp: Checkpoint, opts: BuildOptions = {}): BuiltNetwork {
  if (cp.network) return { network: cp.network, notes: [] };
  const own = GRAPH_BUILDERS[cp.format];
  if (own) return own(cp);
  const topo = topologyFor(cp, opts);
  if (!topo) {
    throw new Error(`${cp.path}: no layers could be recognised from the tensor names; describe them in a manifest (${cp.path}.synbal.json)`);
  }
  try {
    return { network: topologyToNetwork(cp, topo, { defaultActivation: opts.defaultActivation }), notes: topo.notes };
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(cp.path) || msg.startsWith(topo.source) ? msg : `${cp.path}: ${msg}`);
  }
}
