// What a PyTorch pickle showed besides its tensors, for the graph builders: the key order
// of a state dict, or the module tree of a whole pickled module (eager or TorchScript).
// Plain JSON data: no Maps, no BigInts, no class instances.

export type PickleScalar = number | string | boolean | null;

export interface TensorSlot {
  /** Name inside the module ("weight"). */
  name: string;
  /** Full tensor name in the checkpoint ("fc1.weight"); null for a None slot (bias=False). */
  tensor: string | null;
}

export interface ModuleNode {
  /** Attribute name in the parent module; "" for the root. */
  name: string;
  /** Dotted path from the root ("", "fc1", "features.0"): the prefix of its tensor names. */
  path: string;
  /** The class as pickled: "__main__.TinyNet", "__torch__.torch.nn.modules.linear.___torch_mangle_0.Linear". */
  className: string;
  /** The class without TorchScript's "__torch__." prefix and name mangling: "torch.nn.modules.linear.Linear". */
  typeName: string;
  parameters: TensorSlot[];
  buffers: TensorSlot[];
  /** Plain hyper-parameters found on the instance or as TorchScript constants (in_features, negative_slope, …). */
  attributes: Record<string, PickleScalar | PickleScalar[]>;
  children: ModuleNode[];
  /** The same module object already appears at this path (shared submodule). */
  sharedWith?: string;
  /** Source code the file carries for the class (legacy files, TorchScript code/). */
  source?: string;
}

export interface ScriptClass {
  /** As the pickle names it: "__torch__.torch.nn.modules.linear.Linear". */
  qualifiedName: string;
  parameters: string[];
  buffers: string[];
  /** `name : Final[type] = value` lines, values as written. */
  constants: Record<string, string>;
  source: string;
}

export interface PickleStructure {
  /** How the file was stored. */
  container: 'zip' | 'legacy' | 'torchscript';
  /**
   * state-dict: a flat dict of tensors; checkpoint: a dict holding state dicts or modules
   * among other things (epoch, optimizer); module: a whole pickled nn.Module or
   * TorchScript module; other: anything else that held tensors.
   */
  kind: 'state-dict' | 'checkpoint' | 'module' | 'other';
  /** Tensor names in the order the pickle lists them (the TensorEntry names). */
  keys: string[];
  /**
   * Module prefixes a state dict's `_metadata` lists, in registration order. Unlike the
   * keys it includes modules without tensors (activations: "act", "1").
   */
  modulePaths?: string[];
  /** The module tree, when the pickle is (or holds, at `path`) a module. */
  module?: ModuleNode;
  /** Scalar top-level entries of a checkpoint dict (epoch, arch, …). */
  extras: Record<string, PickleScalar>;
  /** Globals that were not on the allowlist and were kept as inert placeholders. */
  globals: string[];
  /** Of those, the ones the pickle calls that can execute code when Python loads the file. */
  executable: string[];
  /** TorchScript: the classes described in code/. */
  scriptClasses?: ScriptClass[];
}

/** "__torch__.torch.nn.modules.linear.___torch_mangle_3.Linear" → "torch.nn.modules.linear.Linear". */
export function typeNameOf(className: string): string {
  return className.replace(/^__torch__\./, '').replace(/(^|\.)___torch_mangle_\d+(?=\.)/g, '').replace(/^\./, '');
}

export function emptyRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
