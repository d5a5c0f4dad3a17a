// What every format folder provides: one ModelFormat that sniffs, opens, builds the network,
// writes, and (where the format can run its own files) verifies a written copy. Formats import
// this module, never the registry, so the registry is the only place that lists them.
import type { FunctionCheck } from '../../contract/requests';
import type { Network } from '../../engine/network';
import type { Tensor } from '../../tensor/tensor';
import type { Checkpoint } from './checkpoint';

export interface WriteOptions {
  /** Replacing the input itself: keep `<file>.bak`. */
  backup?: boolean;
  /**
   * The folder the written files will finally be moved into, when `target` is a staged path
   * (writeChecked's staging folder); by default the target's own folder. Writers that name
   * files after what is there (sharded shards, ONNX external data they must not replace) look here.
   */
  finalFolder?: string;
}

export interface NetworkOptions {
  /** Activation for hidden layers whose activation the file does not state (a setting). */
  defaultActivation?: string;
}

export interface BuiltNetwork {
  network: Network;
  /** Where the topology came from, and what was inferred or could not be. */
  notes: string[];
}

/**
 * How far a written copy's outputs are from the original's on the same random inputs: the
 * figures the contract reports (inputs used, inconclusive, judged-on values, limit), and what ran.
 */
export interface WrittenCheck extends FunctionCheck {
  /** What ran both: `onnxruntime`, `engine forward pass`. */
  method: string;
  /** Time steps per sample (recurrent networks); 1 otherwise. */
  steps: number;
}

/** What a front end asks of a check. */
export interface WrittenCheckOptions {
  /** Shapes by input name ('' for a model's only input), from --input-shape. */
  inputShapes?: Readonly<Record<string, number[]>>;
}

/**
 * A format's own check of a written copy: both files run in the format's runtime (a graph the
 * engine only partly models) on the same inputs.
 */
export interface WrittenVerifier {
  /** Why the runtime cannot run here (not installed, disabled), or undefined when it can. */
  unavailable(): string | undefined;
  run(original: string, written: string, opts?: WrittenCheckOptions): Promise<WrittenCheck>;
}

export interface ModuleHint {
  /** Dotted path, e.g. "fc1" or "features.3". */
  path: string;
  /** Class name as pickled, e.g. "torch.nn.modules.activation.ReLU". */
  className: string;
  /** Numeric attributes that matter (negative_slope, inplace…). */
  attrs?: Record<string, number>;
}

/** What a state-dict format knows beyond tensor names, for proposing its layers. */
export interface StateDictHints {
  /** Module list of a pickled nn.Module, in registration order (PyTorch files that carry one). */
  modules?: ModuleHint[];
  /** Whether the tensors came out of a pickle (whose container order is the save order). */
  pickled?: boolean;
}

export interface ModelFormat {
  id: string;
  description: string;
  /** Extensions this format is usually saved with (for workspace globs), without dots. */
  extensions: readonly string[];
  /**
   * Whether the file states its own graph or network: then a sidecar manifest and the naming
   * conventions of state dicts do not apply.
   */
  statesGraph: boolean;
  /** State dicts: what the file says beyond tensor names (a pickled module list). */
  stateDictHints?(cp: Checkpoint): StateDictHints;
  /** Cheap check on the file's first bytes (and its name, where bytes cannot tell). */
  sniff(head: Buffer, path: string): boolean;
  open(path: string): Checkpoint;
  /** The network the engine balances, from the file's graph, a manifest or tensor names. */
  toNetwork(cp: Checkpoint, opts: NetworkOptions): BuiltNetwork;
  /**
   * Writes the checkpoint to `target` with the `changed` tensors replacing their originals
   * (same names, dtypes and shapes), every other byte as it was; safely (temporary file,
   * verified, renamed). Companion files (shards, external data) go beside `target` under names
   * derived from its base name. Returns every file written, the main one first.
   */
  write(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts?: WriteOptions): string[];
  /**
   * The format's own check of a written copy, where it has a runtime. Absent (or unavailable
   * here): the engine's forward pass over the network read back from the written copy.
   */
  verifyWritten?: WrittenVerifier;
  /**
   * A multi-file format whose set is committed by its main file (a sharded index renamed into
   * place last): the files `target` names now (before a commit replaces it), and the removal of
   * files that no committed set names any more (left by a killed run, or replaced by the commit).
   */
  filesOf?(target: string): string[];
  tidy?(target: string, formerFiles?: readonly string[]): string[];
}
