// The allowlist: the few torch/collections globals whose meaning we rebuild in JS (tensor
// and storage descriptors, ordered dicts, sizes). Everything else a pickle names becomes an
// inert PyGlobal, and is remembered so the reader can report it.
import type { StoredDType } from '../core/checkpoint';
import type { UnpickleHooks } from './pickle';
import { PyDict, PyFunction, PyGlobal, PyObject, PySet, describe, isTuple, tuple } from './values';

export interface StorageKind {
  /** As pickled, e.g. "FloatStorage". */
  typeName: string;
  dtype: StoredDType;
  /** Bytes per element; undefined for sub-byte packed types. */
  itemsize: number | undefined;
  /** The torch dtype name, for messages (qint8, float8_e4m3fn…). */
  torchDtype: string;
  quantized: boolean;
}

const STORAGES: Record<string, [StoredDType, number | undefined, string]> = {
  DoubleStorage: ['float64', 8, 'float64'],
  FloatStorage: ['float32', 4, 'float32'],
  HalfStorage: ['float16', 2, 'float16'],
  BFloat16Storage: ['bfloat16', 2, 'bfloat16'],
  LongStorage: ['int64', 8, 'int64'],
  IntStorage: ['int32', 4, 'int32'],
  ShortStorage: ['int16', 2, 'int16'],
  CharStorage: ['int8', 1, 'int8'],
  ByteStorage: ['uint8', 1, 'uint8'],
  BoolStorage: ['bool', 1, 'bool'],
  ComplexFloatStorage: ['complex64', 8, 'complex64'],
  ComplexDoubleStorage: ['other', 16, 'complex128'],
  ComplexHalfStorage: ['other', 4, 'complex32'],
  UInt16Storage: ['other', 2, 'uint16'],
  UInt32Storage: ['other', 4, 'uint32'],
  UInt64Storage: ['other', 8, 'uint64'],
  Float8_e4m3fnStorage: ['float8', 1, 'float8_e4m3fn'],
  Float8_e5m2Storage: ['float8', 1, 'float8_e5m2'],
  Float8_e4m3fnuzStorage: ['float8', 1, 'float8_e4m3fnuz'],
  Float8_e5m2fnuzStorage: ['float8', 1, 'float8_e5m2fnuz'],
  QInt8Storage: ['int8', 1, 'qint8'],
  QUInt8Storage: ['uint8', 1, 'quint8'],
  QInt32Storage: ['int32', 4, 'qint32'],
  QUInt4x2Storage: ['other', undefined, 'quint4x2'],
  QUInt2x4Storage: ['other', undefined, 'quint2x4'],
};

/** torch.FloatStorage and friends: only ever used as the type inside a persistent id. */
export class StorageType {
  constructor(readonly kind: StorageKind) {}
}

/** A storage a persistent id refers to; the reader maps `key` to bytes in the file. */
export interface StorageRef {
  key: string;
  kind: StorageKind;
  location: string;
  /** Elements available to tensors of this storage (the view's size, for a view). */
  numel: number;
  /** Legacy format only: a view of `key`'s storage starting at element `offset`. */
  view?: { key: string; offset: number };
}

/** A tensor as the pickle describes it: a strided view of a storage. */
export class TensorRef {
  parameter = false;
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly requiresGrad: boolean,
    /** Quantizer parameters in words, for quantized tensors. */
    readonly quantization?: string,
  ) {}

  asParameter(): TensorRef {
    const p = new TensorRef(this.storage, this.storageOffset, this.shape, this.stride, this.requiresGrad, this.quantization);
    p.parameter = true;
    return p;
  }
}

/** Names a dtype, memory format or quantization scheme; harmless as a value. */
export class TorchConstant {
  constructor(readonly qualifiedName: string) {}
}

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new Error(`${what} must be a tuple of integers, not ${describe(v)}`);
  return v.map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new Error(`${what} holds ${describe(x)}, not a small integer`);
    return x;
  });
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new Error(`${what} must be an integer, not ${describe(v)}`);
  return v;
}

function storageArg(v: unknown, fn: string): StorageRef {
  if (!(v instanceof StorageHandle)) throw new Error(`${fn} got ${describe(v)} where a storage belongs`);
  return v.ref;
}

/** What a persistent id resolves to: wraps the StorageRef so it cannot be confused with data. */
export class StorageHandle {
  constructor(readonly ref: StorageRef) {}
}

function rebuildTensor(fn: string, args: readonly unknown[], quantization?: string): TensorRef {
  if (args.length < 4) throw new Error(`${fn} needs at least 4 arguments, got ${args.length}`);
  const storage = storageArg(args[0], fn);
  return new TensorRef(storage, int(args[1], `${fn}: storage offset`), intList(args[2], `${fn}: size`), intList(args[3], `${fn}: stride`), args[4] === true, quantization);
}

function describeQuantizer(params: unknown): string {
  if (!isTuple(params) || params.length === 0) return 'quantized';
  const [scheme, ...rest] = params;
  const name = scheme instanceof TorchConstant ? scheme.qualifiedName.replace(/^torch\./, '') : String(scheme);
  if (name === 'per_tensor_affine' && rest.length >= 2) return `per-tensor affine, scale ${rest[0]}, zero point ${rest[1]}`;
  return name.replace(/_/g, '-');
}

function orderedDict(args: readonly unknown[]): PyDict {
  const d = new PyDict();
  const items = args[0];
  if (items === undefined || items === null) return d;
  if (items instanceof PyDict) {
    for (const [k, v] of items) d.set(k, v);
    return d;
  }
  if (!Array.isArray(items)) throw new Error(`OrderedDict got ${describe(items)}`);
  for (const pair of items) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new Error('OrderedDict items must be key/value pairs');
    d.set(pair[0], pair[1]);
  }
  return d;
}

const TENSOR_PASSTHROUGH = (args: readonly unknown[]): unknown => args[0];

function functions(): Map<string, (args: readonly unknown[]) => unknown> {
  const f = new Map<string, (args: readonly unknown[]) => unknown>();
  f.set('torch._utils._rebuild_tensor_v2', (a) => rebuildTensor('_rebuild_tensor_v2', a));
  f.set('torch._utils._rebuild_tensor', (a) => rebuildTensor('_rebuild_tensor', a));
  f.set('torch._utils._rebuild_qtensor', (a) => rebuildTensor('_rebuild_qtensor', [a[0], a[1], a[2], a[3], a[5]], describeQuantizer(a[4])));
  const parameter = (a: readonly unknown[]): unknown => (a[0] instanceof TensorRef ? a[0].asParameter() : a[0]);
  f.set('torch._utils._rebuild_parameter', parameter);
  f.set('torch._utils._rebuild_parameter_with_state', parameter);
  // torch 2 wraps tensor rebuilds for subclasses: (func, type, args, state).
  f.set('torch._tensor._rebuild_from_type_v2', (a) => {
    const [fn, , args] = a;
    if (fn instanceof PyFunction && isTuple(args)) return fn.call(args);
    return new PyObject(new PyGlobal('torch._tensor', '_rebuild_from_type_v2'), a, 'call');
  });
  f.set('collections.OrderedDict', orderedDict);
  f.set('builtins.dict', orderedDict);
  f.set('__builtin__.dict', orderedDict);
  for (const mod of ['builtins', '__builtin__']) {
    for (const kind of ['set', 'frozenset']) {
      f.set(`${mod}.${kind}`, (a) => {
        const s = new PySet(kind === 'frozenset');
        if (Array.isArray(a[0])) for (const x of a[0]) s.items.push(x);
        return s;
      });
    }
  }
  f.set('torch.Size', (a) => tuple(intList(a[0] ?? [], 'torch.Size')));
  f.set('torch.device', (a) => a.map(String).join(':'));
  // Protocol 2 spells Python 3 bytes as _codecs.encode(text, "latin1").
  f.set('_codecs.encode', (a) => {
    if (typeof a[0] !== 'string') throw new Error('_codecs.encode needs a string');
    const enc = typeof a[1] === 'string' ? a[1].toLowerCase().replace(/[-_]/g, '') : 'utf8';
    return Uint8Array.from(Buffer.from(a[0], enc === 'latin1' || enc === 'iso88591' ? 'latin1' : 'utf8'));
  });
  // Protocols 0 and 1 instantiate classes through copyreg: (cls, base, state) or (cls, *args).
  for (const mod of ['copyreg', 'copy_reg']) {
    f.set(`${mod}._reconstructor`, (a) => (a[0] instanceof PyGlobal ? new PyObject(a[0], [], 'new') : new PyObject(new PyGlobal(mod, '_reconstructor'), a, 'call')));
    f.set(`${mod}.__newobj__`, (a) => (a[0] instanceof PyGlobal ? new PyObject(a[0], a.slice(1), 'new') : new PyObject(new PyGlobal(mod, '__newobj__'), a, 'call')));
  }
  // TorchScript's typed containers: the value is the first argument.
  for (const n of ['build_intlist', 'build_doublelist', 'build_boollist', 'build_tensorlist', 'restore_type_tag']) f.set(`torch.jit._pickle.${n}`, TENSOR_PASSTHROUGH);
  return f;
}

const FUNCTIONS = functions();

const CONSTANT_NAMES = new Set([
  'float64', 'float32', 'float16', 'bfloat16', 'double', 'float', 'half', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool', 'long', 'int', 'short',
  'complex64', 'complex128', 'qint8', 'quint8', 'qint32', 'quint4x2', 'float8_e4m3fn', 'float8_e5m2',
  'per_tensor_affine', 'per_channel_affine', 'per_channel_affine_float_qparams', 'per_tensor_symmetric', 'per_channel_symmetric',
  'contiguous_format', 'channels_last', 'channels_last_3d', 'preserve_format', 'strided', 'sparse_coo',
]);

/**
 * Globals outside FUNCTIONS that checkpoints call to make plain values, and that do nothing
 * else when Python calls them: calling one is not running code. Every other global a pickle
 * calls (REDUCE, INST, OBJ) can execute code when Python loads the file — whatever its name:
 * the rule is this allowlist, not a list of known-bad names.
 */
const VALUE_CONSTRUCTORS = new Set(
  [
    ...['set', 'frozenset', 'slice', 'complex', 'bytearray', 'bytes', 'list', 'dict', 'tuple', 'int', 'float', 'str', 'bool', 'range'].flatMap((n) => [`builtins.${n}`, `__builtin__.${n}`]),
    'copyreg._reconstructor', 'copy_reg._reconstructor', '_codecs.encode',
    'collections.OrderedDict', 'collections.defaultdict', 'collections.Counter', 'collections.deque',
    'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct', 'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar', 'numpy.dtype', 'numpy.ndarray',
    'torch.Size', 'torch.device', 'torch.dtype', 'torch.memory_format', 'torch.layout',
    'pathlib.PosixPath', 'pathlib.WindowsPath', 'pathlib.PurePosixPath', 'pathlib.PureWindowsPath', 'pathlib.Path',
    'datetime.datetime', 'datetime.date', 'datetime.time', 'datetime.timedelta', 'datetime.timezone',
    'decimal.Decimal', 'fractions.Fraction', 'uuid.UUID', 'argparse.Namespace', 'types.SimpleNamespace',
  ],
);

/** Whether Python calling this global (with arguments the file chooses) could do more than make a value. */
export function canExecuteCode(qualifiedName: string): boolean {
  return !VALUE_CONSTRUCTORS.has(qualifiedName) && !FUNCTIONS.has(qualifiedName);
}

/** Class names of torch modules and pickled model classes: expected, reported quietly. */
function looksLikeClass(name: string): boolean {
  return /^[A-Z]/.test(name);
}

export class TorchUnpickler implements UnpickleHooks {
  /** Inert globals, in order of first appearance. */
  readonly placeholders = new Map<string, PyGlobal>();
  /** Globals the pickle calls (REDUCE, INST, OBJ), in order of first call. */
  readonly calls = new Set<string>();
  /** Class source code a legacy checkpoint carries beside its classes. */
  readonly classSources = new Map<string, string>();
  /** Every persistent id seen, in order. */
  readonly storages: StorageRef[] = [];

  findGlobal(module: string, name: string): unknown {
    const qualified = `${module}.${name}`;
    const fn = FUNCTIONS.get(qualified);
    if (fn) return new PyFunction(qualified, fn);
    if (module === 'torch' && STORAGES[name]) {
      const [dtype, itemsize, torchDtype] = STORAGES[name];
      return new StorageType({ typeName: name, dtype, itemsize, torchDtype, quantized: name.startsWith('QU') || name.startsWith('QI') });
    }
    if (module === 'torch' && CONSTANT_NAMES.has(name)) return new TorchConstant(qualified);
    // The base class copyreg names beside the real one: inert, and not worth a warning.
    if (qualified === 'builtins.object' || qualified === '__builtin__.object') return new PyGlobal(module, name);
    let g = this.placeholders.get(qualified);
    if (!g) {
      g = new PyGlobal(module, name);
      this.placeholders.set(qualified, g);
    }
    return g;
  }

  called(g: PyGlobal): void {
    this.calls.add(g.qualifiedName);
  }

  /** The globals this pickle calls that can execute code when Python loads it. */
  executable(): string[] {
    return [...this.calls].filter(canExecuteCode);
  }

  persistentLoad(pid: unknown): unknown {
    if (!isTuple(pid) || pid.length === 0) throw new Error(`unexpected persistent id ${describe(pid)}`);
    const [tag] = pid;
    if (tag === 'module' && pid.length >= 4) {
      // Legacy files name each module class with its source; the class stays inert.
      const cls = pid[1];
      if (cls instanceof PyGlobal && typeof pid[3] === 'string') this.classSources.set(cls.qualifiedName, pid[3]);
      return cls;
    }
    if (tag !== 'storage' || pid.length < 5) throw new Error(`unexpected persistent id (${describe(tag)}, ${pid.length} items)`);
    const [, type, key, location, numel, view] = pid;
    if (!(type instanceof StorageType)) throw new Error(`storage ${String(key)} has type ${describe(type)}, not a known torch storage type`);
    if (typeof key !== 'string' && typeof key !== 'number') throw new Error(`storage key ${describe(key)} is not a string`);
    const n = int(numel, `storage ${key}: element count`);
    if (n < 0) throw new Error(`storage ${key} has a negative element count ${n}`);
    const ref: StorageRef = { key: String(key), kind: type.kind, location: String(location), numel: n };
    // Legacy views: (view_key, offset, view_size) into the root storage `key`, in elements.
    if (isTuple(view) && view.length >= 3) {
      ref.view = { key: String(view[0]), offset: int(view[1], `storage view ${String(view[0])}: offset`) };
      ref.numel = int(view[2], `storage view ${String(view[0])}: size`);
      if (ref.view.offset < 0 || ref.numel < 0 || ref.view.offset + ref.numel > n) throw new Error(`storage view ${ref.view.key} (${ref.numel} elements at ${ref.view.offset}) lies outside storage ${key} (${n} elements)`);
    }
    this.storages.push(ref);
    return new StorageHandle(ref);
  }

  /** Warning lines for what was not built: globals that can execute code one by one, classes together. */
  warnings(): string[] {
    const out: string[] = [];
    const classes: string[] = [];
    const executable = new Set(this.executable());
    for (const g of this.placeholders.values()) {
      if (executable.has(g.qualifiedName)) out.push(`pickle global ${g.qualifiedName} was not run: it can execute code when Python loads this file; treat the file as untrusted`);
      else if (looksLikeClass(g.name)) classes.push(g.qualifiedName);
      else out.push(`pickle global ${g.qualifiedName} was not run (not on the allowlist); values it would have built are missing`);
    }
    if (classes.length) out.unshift(`pickle classes kept as inert placeholders (never imported or run): ${classes.join(', ')}`);
    return out;
  }
}
