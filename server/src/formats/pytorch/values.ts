// The values an unpickled object graph is made of. Python containers become JS containers
// with no behaviour: dicts are Maps (a pickled "__proto__" key stays a key), tuples are
// frozen arrays, and every class or function the pickle names is either built by an
// allowlisted JS function or kept as an inert record of its name.

/** A Python dict (OrderedDict included). Attributes set by BUILD live beside the items. */
export class PyDict extends Map<unknown, unknown> {
  /** Instance attributes (e.g. a state dict's `_metadata`), when the pickle set any. */
  attrs?: Map<string, unknown>;
}

export class PySet {
  readonly items: unknown[] = [];
  constructor(readonly frozen = false) {}
}

/** A global the pickle names that is not on the allowlist: remembered, never resolved. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * What a pickle makes by "calling" or instantiating a PyGlobal: nothing is called; the
 * class, the arguments and any state BUILD gives it are kept for inspection.
 */
export class PyObject {
  state: unknown = undefined;
  /** Items appended (list subclasses) or set (dict subclasses) on the object. */
  readonly listItems: unknown[] = [];
  readonly dictItems = new Map<unknown, unknown>();
  constructor(
    readonly cls: PyGlobal,
    readonly args: readonly unknown[],
    /** How it came to be: a REDUCE call, or a NEWOBJ/INST/OBJ instantiation. */
    readonly via: 'call' | 'new',
  ) {}
}

/** An allowlisted global: a pure JS function that builds a value from pickled arguments. */
export class PyFunction {
  constructor(
    readonly qualifiedName: string,
    readonly call: (args: readonly unknown[]) => unknown,
  ) {}
}

export type PyTuple = readonly unknown[];

export function tuple(items: unknown[]): PyTuple {
  return Object.freeze(items);
}

export function isTuple(v: unknown): v is PyTuple {
  return Array.isArray(v) && Object.isFrozen(v);
}

export function isList(v: unknown): v is unknown[] {
  return Array.isArray(v) && !Object.isFrozen(v);
}

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)})`;
  if (typeof v === 'number' || typeof v === 'bigint') return `the number ${v}`;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (v instanceof PyDict) return `a dict of ${v.size} entries`;
  if (isTuple(v)) return `a tuple of ${v.length}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof PyObject) return v.via === 'call' ? `a call to ${v.cls.qualifiedName}(…) that was not run` : `an object of class ${v.cls.qualifiedName}`;
  if (v instanceof PyGlobal) return `the global ${v.qualifiedName}`;
  if (v instanceof PyFunction) return `the function ${v.qualifiedName}`;
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (v instanceof PySet) return `a set of ${v.items.length}`;
  return 'an object';
}
