// From an unpickled object graph to named tensors and a PickleStructure. Names follow
// PyTorch's state_dict convention (dotted paths; a module's _parameters/_buffers/_modules
// dicts add no path component), so a whole pickled module yields the same names as its
// state dict.
import { emptyRecord, typeNameOf, type ModuleNode, type PickleScalar, type PickleStructure, type ScriptClass, type TensorSlot } from './structure';
import { TensorRef, TorchConstant } from './torchGlobals';
import { PyDict, PyGlobal, PyObject, isTuple } from './values';

export interface NamedTensor {
  name: string;
  ref: TensorRef;
}

export interface WalkResult {
  tensors: NamedTensor[];
  structure: Omit<PickleStructure, 'container' | 'globals' | 'executable'>;
  warnings: string[];
  /** The pickle's result in words, when it held no tensors. */
  rootDescription: string;
}

const MAX_DEPTH = 200;
/**
 * Steps the walk may take over the object graph (each container's items, once per container:
 * shared structure is walked once). Far beyond any checkpoint; a bound on hostile graphs.
 */
export const MAX_WALK_STEPS = 20_000_000;

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function keyName(k: unknown): string | undefined {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return String(k);
  return undefined;
}

function plainScalar(v: unknown): PickleScalar | undefined {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof TorchConstant) return v.qualifiedName;
  return undefined;
}

/** A scalar, or a short flat list of them (never recursive: lists of lists are not attributes). */
function scalar(v: unknown): PickleScalar | PickleScalar[] | undefined {
  if (!Array.isArray(v)) return plainScalar(v);
  if (v.length > 16) return undefined;
  const items = v.map(plainScalar);
  return items.every((x): x is PickleScalar => x !== undefined) ? items : undefined;
}

/** A path for messages: the first and last components of a deep one. */
function shortPath(path: string): string {
  return path.length <= 120 ? path : `${path.slice(0, 50)}…${path.slice(-50)}`;
}

function isModuleState(state: unknown): state is PyDict {
  return state instanceof PyDict && (state.has('_parameters') || state.has('_modules'));
}

function isScriptObject(o: PyObject): boolean {
  return o.cls.module.startsWith('__torch__') && o.state instanceof PyDict;
}

class Walker {
  readonly tensors: NamedTensor[] = [];
  readonly warnings: string[] = [];
  readonly roots: ModuleNode[] = [];
  modulePaths?: string[];
  private readonly names = new Set<string>();
  private readonly seen = new Map<object, string>();
  private readonly scripts = new Map<string, ScriptClass>();
  private deepWarned = false;
  private steps = 0;
  /** Containers known to hold no tensor (a search that found none marks all it saw). */
  private readonly tensorless = new WeakSet<object>();

  private step(n = 1): void {
    this.steps += n;
    if (this.steps > MAX_WALK_STEPS) throw new Error(`the pickle's object graph is too large to walk (more than ${MAX_WALK_STEPS} steps)`);
  }

  /** Whether a tensor is reachable from `v` (within MAX_DEPTH levels). */
  containsTensor(v: unknown): boolean {
    if (v instanceof TensorRef) return true;
    if (v === null || typeof v !== 'object' || this.tensorless.has(v)) return false;
    const seen: object[] = [];
    const found = this.search(v, 0, new Set<object>(), seen);
    if (!found) for (const o of seen) this.tensorless.add(o);
    return found;
  }

  private search(v: unknown, depth: number, seen: Set<object>, order: object[]): boolean {
    if (v instanceof TensorRef) return true;
    if (depth > MAX_DEPTH || v === null || typeof v !== 'object' || seen.has(v) || this.tensorless.has(v)) return false;
    seen.add(v);
    order.push(v);
    this.step();
    if (v instanceof PyDict) {
      for (const x of v.values()) {
        this.step();
        if (this.search(x, depth + 1, seen, order)) return true;
      }
      return false;
    }
    if (Array.isArray(v)) {
      for (const x of v) {
        this.step();
        if (this.search(x, depth + 1, seen, order)) return true;
      }
      return false;
    }
    if (v instanceof PyObject) {
      if (this.search(v.state, depth + 1, seen, order)) return true;
      for (const x of v.dictItems.values()) {
        this.step();
        if (this.search(x, depth + 1, seen, order)) return true;
      }
      for (const x of v.listItems) {
        this.step();
        if (this.search(x, depth + 1, seen, order)) return true;
      }
    }
    return false;
  }

  constructor(
    scriptClasses: readonly ScriptClass[],
    private readonly classSources: ReadonlyMap<string, string>,
  ) {
    for (const c of scriptClasses) this.scripts.set(c.qualifiedName, c);
  }

  private addTensor(path: string, ref: TensorRef): string {
    let name = path || 'tensor';
    for (let i = 2; this.names.has(name); i++) name = `${path || 'tensor'}#${i}`;
    this.names.add(name);
    this.tensors.push({ name, ref });
    return name;
  }

  /** False when `obj` was already walked (cycles, shared containers). */
  private enter(obj: object, path: string): boolean {
    if (this.seen.has(obj)) return false;
    this.seen.set(obj, path);
    return true;
  }

  visit(v: unknown, path: string, depth: number): void {
    if (depth > MAX_DEPTH) {
      if (!this.deepWarned) this.warnings.push(`the pickle nests deeper than ${MAX_DEPTH} levels at ${shortPath(path)}; deeper tensors are not listed`);
      this.deepWarned = true;
      return;
    }
    this.step();
    if (v instanceof TensorRef) {
      this.addTensor(path, v);
      return;
    }
    if (v instanceof PyDict) {
      if (!this.enter(v, path)) return;
      this.noteMetadata(v, path);
      let warned = false;
      for (const [k, item] of v) {
        const key = keyName(k);
        if (key === undefined) {
          if (!warned && this.containsTensor(item)) {
            this.warnings.push(`tensors under a non-string dict key in ${shortPath(path) || 'the top-level dict'} are not listed`);
            warned = true;
          }
          continue;
        }
        this.visit(item, join(path, key), depth + 1);
      }
      return;
    }
    if (Array.isArray(v)) {
      if (!this.enter(v, path)) return;
      v.forEach((item, i) => this.visit(item, join(path, String(i)), depth + 1));
      return;
    }
    if (v instanceof PyObject) {
      if (isModuleState(v.state) || isScriptObject(v)) {
        this.roots.push(this.module(v, path.slice(path.lastIndexOf('.') + 1), path, depth));
        return;
      }
      if (!this.enter(v, path)) return;
      if (v.cls.module.startsWith('torch') && /_rebuild|Tensor|Parameter/.test(v.cls.name) && path) {
        this.warnings.push(`tensor ${path} is stored as ${v.cls.qualifiedName}, which this reader does not rebuild; it is skipped`);
      }
      // An unknown container: its tensors still have names by position.
      this.visit(v.state, path, depth + 1);
      if (v.dictItems.size) this.visit(new PyDict(v.dictItems), path, depth + 1);
      if (v.listItems.length) this.visit(v.listItems, path, depth + 1);
    }
  }

  /** Module.state_dict() records every module prefix in `_metadata`, activations included. */
  private noteMetadata(d: PyDict, path: string): void {
    const meta = d.attrs?.get('_metadata');
    if (this.modulePaths || !(meta instanceof PyDict)) return;
    this.modulePaths = [...meta.keys()].filter((k): k is string => typeof k === 'string').map((k) => (path ? (k ? join(path, k) : path) : k));
  }

  private module(obj: PyObject, name: string, path: string, depth: number): ModuleNode {
    const className = obj.cls.qualifiedName;
    const node: ModuleNode = { name, path, className, typeName: typeNameOf(className), parameters: [], buffers: [], attributes: emptyRecord(), children: [] };
    const previous = this.seen.get(obj);
    if (previous !== undefined) {
      node.sharedWith = previous;
      return node;
    }
    this.seen.set(obj, path);
    const source = this.classSources.get(className) ?? this.scripts.get(className)?.source;
    if (source !== undefined) node.source = source;
    if (depth > MAX_DEPTH) {
      this.warnings.push(`modules nest deeper than ${MAX_DEPTH} levels at ${shortPath(path)}; deeper ones are not listed`);
      return node;
    }
    const state = obj.state as PyDict;
    if (isModuleState(state)) this.eagerModule(node, state, depth);
    else this.scriptModule(node, state, depth);
    return node;
  }

  private slots(dict: unknown, path: string, into: TensorSlot[], what: string, depth: number): void {
    if (!(dict instanceof PyDict)) return;
    for (const [k, v] of dict) {
      const key = keyName(k);
      if (key === undefined) continue;
      if (v instanceof TensorRef) into.push({ name: key, tensor: this.addTensor(join(path, key), v) });
      else if (v === null) into.push({ name: key, tensor: null });
      else if (this.containsTensor(v)) {
        this.warnings.push(`${what} ${join(path, key)} is ${v instanceof PyObject ? v.cls.qualifiedName : 'not a plain tensor'}; its tensors are listed by position`);
        this.visit(v, join(path, key), depth + 1);
      }
    }
  }

  private eagerModule(node: ModuleNode, state: PyDict, depth: number): void {
    this.slots(state.get('_parameters'), node.path, node.parameters, 'parameter', depth);
    this.slots(state.get('_buffers'), node.path, node.buffers, 'buffer', depth);
    const modules = state.get('_modules');
    if (modules instanceof PyDict) {
      for (const [k, child] of modules) {
        const key = keyName(k);
        if (key === undefined || !(child instanceof PyObject)) continue;
        node.children.push(this.module(child, key, join(node.path, key), depth + 1));
      }
    }
    for (const [k, v] of state) {
      if (typeof k !== 'string' || k === '_parameters' || k === '_buffers' || k === '_modules') continue;
      const s = scalar(v);
      if (s !== undefined && !k.startsWith('_')) node.attributes[k] = s;
      else if (this.containsTensor(v)) this.visit(v, join(node.path, k), depth + 1);
    }
  }

  /** TorchScript objects keep parameters, buffers and submodules as plain attributes. */
  private scriptModule(node: ModuleNode, state: PyDict, depth: number): void {
    const info = this.scripts.get(node.className);
    if (info) for (const [k, v] of Object.entries(info.constants)) node.attributes[k] = constantValue(v);
    for (const [k, v] of state) {
      const key = keyName(k);
      if (key === undefined) continue;
      if (v instanceof TensorRef) {
        const slot = { name: key, tensor: this.addTensor(join(node.path, key), v) };
        (info?.buffers.includes(key) ? node.buffers : node.parameters).push(slot);
      } else if (v instanceof PyObject && (isScriptObject(v) || isModuleState(v.state))) {
        node.children.push(this.module(v, key, join(node.path, key), depth + 1));
      } else {
        const s = scalar(v);
        if (s !== undefined && !key.startsWith('_')) node.attributes[key] = s;
        else if (this.containsTensor(v)) this.visit(v, join(node.path, key), depth + 1);
      }
    }
  }
}

/** "3" → 3, "True" → true, "0.10000000000000001" → 0.1; anything else stays text. */
function constantValue(text: string): PickleScalar | PickleScalar[] {
  const t = text.trim();
  if (t === 'True' || t === 'False') return t === 'True';
  if (t === 'None') return null;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  const tupleMatch = /^\[(.*)\]$|^\((.*)\)$/.exec(t);
  if (tupleMatch) {
    const parts = (tupleMatch[1] ?? tupleMatch[2]).split(',').map((p) => p.trim()).filter(Boolean);
    const values = parts.map(constantValue);
    if (values.every((x): x is PickleScalar => !Array.isArray(x))) return values;
  }
  return t.replace(/^"(.*)"$/, '$1');
}

function describeRoot(root: unknown): string {
  if (root instanceof PyObject) return root.via === 'call' ? `a call to ${root.cls.qualifiedName}(…), which was not run` : `an object of class ${root.cls.qualifiedName}`;
  if (root instanceof PyGlobal) return `the global ${root.qualifiedName}`;
  if (root instanceof PyDict) return `a dict of ${root.size} entries`;
  if (isTuple(root)) return `a tuple of ${root.length}`;
  if (Array.isArray(root)) return `a list of ${root.length}`;
  if (root === null) return 'None';
  return `a ${typeof root}`;
}

export function walkPickle(root: unknown, scriptClasses: readonly ScriptClass[] = [], classSources: ReadonlyMap<string, string> = new Map()): WalkResult {
  const w = new Walker(scriptClasses, classSources);
  w.visit(root, '', 0);
  const extras = emptyRecord<PickleScalar>();
  let kind: PickleStructure['kind'] = 'other';
  if (root instanceof PyObject && w.roots.length > 0 && w.roots[0].path === '') kind = 'module';
  else if (root instanceof PyDict) {
    kind = [...root.values()].every((v) => v instanceof TensorRef) ? 'state-dict' : 'checkpoint';
    for (const [k, v] of root) {
      const s = scalar(v);
      if (typeof k === 'string' && s !== undefined && !Array.isArray(s)) extras[k] = s;
    }
  }
  const structure: WalkResult['structure'] = { kind, keys: w.tensors.map((t) => t.name), extras };
  if (w.modulePaths) structure.modulePaths = w.modulePaths;
  if (w.roots.length) structure.module = w.roots[0];
  if (w.roots.length > 1) w.warnings.push(`the pickle holds ${w.roots.length} module trees; the structure describes the first (${w.roots[0].path || 'the root'})`);
  if (scriptClasses.length) structure.scriptClasses = [...scriptClasses];
  return { tensors: w.tensors, structure, warnings: w.warnings, rootDescription: describeRoot(root) };
}
