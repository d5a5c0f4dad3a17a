// One ONNX graph seen as data flow: who produces and who consumes each value, which values are
// constants (and which stored tensors they are views of), and small constant values such as
// shapes and axes. The graph builder asks these questions; this module knows the ONNX rules.
import type { TensorEntry } from '../core/checkpoint';
import { num, type Dim } from './dims';
import { onnxType } from './dtypes';
import { outerNames, topologicalOrder } from './graphOrder';
import { attr, attrInt, attrInts, nodeLabel } from './attrs';
import type { GraphRecord, NodeRecord, TensorRecord } from './proto';
import type { OnnxStructure } from './reader';
import { inferShapes } from './shapes';
import { readNumbers } from './tensors';
import { foldNode, type Folded } from './fold';

export interface Use {
  node: NodeRecord;
  /** The input index; -1 when a subgraph of the node reads the value from the outer scope. */
  input: number;
}

/** A stored tensor seen through Transpose/Unsqueeze/Reshape(1s)/Cast/Identity/Concat nodes. */
export interface ConstPiece {
  entry: TensorEntry;
  /** The graph value that holds the stored tensor (initializer or Constant output). */
  value: string;
  /** For each effective axis, the stored axis it is (null: an inserted axis of size 1). */
  axes: (number | null)[];
  /** Where the piece lies along the view's concat axis (the whole axis when there is one piece). */
  start: number;
  length: number;
}

export interface ConstView {
  shape: number[];
  pieces: ConstPiece[];
  /** The axis the pieces are concatenated along (meaningful when there are several). */
  concatAxis: number;
  /** Nodes between the stored tensors and the value, for notes. */
  via: string[];
}

const FLOAT_CODES = new Set([1, 10, 11, 16]);
/** Operators whose output is all zeros when their data input (every input, for Concat) is. */
const ZERO_KEEPING = new Set(['Expand', 'Tile', 'Identity', 'Cast', 'Reshape', 'Unsqueeze', 'Squeeze', 'Transpose', 'Flatten', 'Concat']);

export class GraphView {
  readonly producer = new Map<string, { node: NodeRecord; output: number }>();
  readonly consumers = new Map<string, Use[]>();
  readonly order: NodeRecord[];
  readonly inputs: string[];
  readonly outputs: Set<string>;
  private readonly initializers = new Map<string, TensorRecord>();
  private readonly views = new Map<string, ConstView | null>();
  private readonly valueCache = new Map<string, Float64Array | null>();
  private readonly constCache = new Map<string, boolean>();
  /** Inferred shapes (symbolic where the model leaves a dimension open). */
  readonly dims = new Map<string, Dim[]>();

  constructor(
    readonly path: string,
    readonly structure: OnnxStructure,
    readonly graph: GraphRecord,
  ) {
    for (const t of graph.initializers) this.initializers.set(t.name, t);
    this.order = topologicalOrder(graph, path).map((i) => graph.nodes[i]);
    for (const n of graph.nodes) {
      n.outputs.forEach((o, k) => o && this.producer.set(o, { node: n, output: k }));
      const use = (v: string, k: number) => {
        const l = this.consumers.get(v) ?? [];
        l.push({ node: n, input: k });
        this.consumers.set(v, l);
      };
      n.inputs.forEach((v, k) => v && use(v, k));
      // If/Loop/Scan bodies read outer values by name: those reads are uses too.
      const inner = new Set<string>();
      for (const a of n.attributes) for (const g of [...(a.g ? [a.g] : []), ...a.graphs]) for (const v of outerNames(g)) inner.add(v);
      for (const v of inner) use(v, -1);
    }
    // Old exporters list initializers among the inputs too (as overridable defaults): those are constants.
    this.inputs = graph.inputs.map((v) => v.name).filter((v) => !this.initializers.has(v));
    this.outputs = new Set(graph.outputs.map((v) => v.name));
    inferShapes(this, this.dims);
  }

  uses(value: string): Use[] {
    return this.consumers.get(value) ?? [];
  }

  entryOf(t: TensorRecord): TensorEntry | undefined {
    return t.entryName ? this.structure.entries.get(t.entryName) : undefined;
  }

  /** The TensorProto a value is directly (initializer or Constant node `value`). */
  storedTensor(value: string): TensorRecord | undefined {
    const init = this.initializers.get(value);
    if (init) return init;
    const p = this.producer.get(value);
    if (p?.node.opType === 'Constant') return attr(p.node, 'value')?.t;
    return undefined;
  }

  /** True when no graph input reaches the value: it is the same on every run. */
  isConstant(value: string): boolean {
    let c = this.constCache.get(value);
    if (c === undefined) {
      this.constCache.set(value, false); // a cycle cannot occur (checked), but stay safe
      const p = this.producer.get(value);
      if (this.initializers.has(value)) c = true;
      else if (!p) c = false;
      else if (p.node.opType === 'Shape' || p.node.attributes.some((a) => a.g || a.graphs.length > 0) || /Random/.test(p.node.opType)) c = false;
      else c = p.node.inputs.every((i) => i === '' || this.isConstant(i));
      this.constCache.set(value, c);
    }
    return c;
  }

  /**
   * A value that is all zeros whatever its shape: ConstantOfShape of 0, stored zeros, and what
   * only copies or broadcasts zeros (PyTorch exports nn.RNN's missing h0 as Expand of a zero).
   */
  isZeroFill(value: string, depth = 0): boolean {
    const p = this.producer.get(value);
    if (p && depth < 16 && ZERO_KEEPING.has(p.node.opType)) {
      const data = p.node.opType === 'Concat' ? p.node.inputs : p.node.inputs.slice(0, 1);
      return data.length > 0 && data.every((v) => v !== '' && this.isZeroFill(v, depth + 1));
    }
    if (p?.node.opType === 'ConstantOfShape') {
      const t = attr(p.node, 'value')?.t;
      if (!t) return true;
      const e = this.entryOf(t);
      return e !== undefined && readNumbers(this.structure.model, t, e).every((v) => v === 0);
    }
    const v = this.constantValues(value);
    return v !== undefined && v.every((x) => x === 0);
  }

  /** Float weights: which stored tensors (and axes) a value is, or undefined when it is computed. */
  constView(value: string): ConstView | undefined {
    if (!this.views.has(value)) this.views.set(value, this.resolveView(value, 0) ?? null);
    return this.views.get(value) ?? undefined;
  }

  private resolveView(value: string, depth: number): ConstView | undefined {
    if (depth > 16) return undefined;
    const t = this.storedTensor(value);
    if (t) {
      const entry = this.entryOf(t);
      if (!entry) return undefined;
      const shape = [...entry.shape];
      return { shape, pieces: [{ entry, value, axes: shape.map((_, i) => i), start: 0, length: shape[0] ?? 1 }], concatAxis: 0, via: [] };
    }
    const p = this.producer.get(value);
    if (!p || p.output !== 0) return undefined;
    const n = p.node;
    const inner = () => (n.inputs[0] ? this.resolveView(n.inputs[0], depth + 1) : undefined);
    const via = (v: ConstView): ConstView => ({ ...v, via: [...v.via, nodeLabel(n)] });
    switch (n.opType) {
      case 'Identity':
        return mapOpt(inner(), via);
      case 'Cast':
        return FLOAT_CODES.has(attrInt(n, 'to', 0)) ? mapOpt(inner(), via) : undefined;
      case 'Transpose': {
        const v = inner();
        if (!v) return undefined;
        const perm = attrInts(n, 'perm') ?? v.shape.map((_, i) => v.shape.length - 1 - i);
        if (perm.length !== v.shape.length) return undefined;
        return via({
          shape: perm.map((a) => v.shape[a]),
          pieces: v.pieces.map((pc) => ({ ...pc, axes: perm.map((a) => pc.axes[a]) })),
          concatAxis: perm.indexOf(v.concatAxis),
          via: v.via,
        });
      }
      case 'Unsqueeze': {
        const v = inner();
        const axes = this.axesOf(n, 1);
        if (!v || !axes) return undefined;
        const rank = v.shape.length + axes.length;
        const norm = axes.map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
        let shape = [...v.shape];
        let pieces = v.pieces.map((pc) => ({ ...pc, axes: [...pc.axes] }));
        let concatAxis = v.concatAxis;
        for (const a of norm) {
          shape = [...shape.slice(0, a), 1, ...shape.slice(a)];
          pieces = pieces.map((pc) => ({ ...pc, axes: [...pc.axes.slice(0, a), null, ...pc.axes.slice(a)] }));
          if (a <= concatAxis) concatAxis++;
        }
        return via({ shape, pieces, concatAxis, via: v.via });
      }
      case 'Squeeze':
      case 'Reshape': {
        const v = inner();
        if (!v) return undefined;
        const target = n.opType === 'Reshape' ? this.reshapeTarget(v.shape, n) : this.squeezed(v.shape, n);
        return target ? mapOpt(onlyUnitAxesChange(v, target), via) : undefined;
      }
      case 'Concat': {
        const parts = n.inputs.map((i) => (i ? this.resolveView(i, depth + 1) : undefined));
        if (parts.some((x) => !x) || parts.length === 0) return undefined;
        const vs = parts as ConstView[];
        const rank = vs[0].shape.length;
        let axis = attrInt(n, 'axis', 0);
        if (axis < 0) axis += rank;
        const pieces: ConstPiece[] = [];
        let offset = 0;
        for (const v of vs) {
          if (v.shape.length !== rank) return undefined;
          if (v.pieces.length > 1 && v.concatAxis !== axis) return undefined;
          for (const pc of v.pieces) pieces.push({ ...pc, start: offset + (v.pieces.length > 1 ? pc.start : 0), length: v.pieces.length > 1 ? pc.length : v.shape[axis] });
          offset += v.shape[axis];
        }
        const shape = [...vs[0].shape];
        shape[axis] = offset;
        return via({ shape, pieces, concatAxis: axis, via: vs.flatMap((v) => v.via) });
      }
      default:
        return undefined;
    }
  }

  private squeezed(shape: number[], n: NodeRecord): number[] | undefined {
    const axes = this.axesOf(n, 1);
    if (!axes) return shape.filter((d) => d !== 1);
    const norm = new Set(axes.map((a) => (a < 0 ? a + shape.length : a)));
    return shape.filter((_, i) => !norm.has(i));
  }

  private reshapeTarget(shape: number[], n: NodeRecord): number[] | undefined {
    const spec = n.inputs[1] ? this.constantValues(n.inputs[1]) : undefined;
    if (!spec) return undefined;
    const total = shape.reduce((a, b) => a * b, 1);
    const out = Array.from(spec, (d, i) => (d === 0 ? shape[i] : d));
    const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    return out.map((d) => (d === -1 ? total / known : d));
  }

  /** Axes from the `axes` attribute (older opsets) or the second input (newer ones). */
  axesOf(n: NodeRecord, inputIndex: number): number[] | undefined {
    const a = attrInts(n, 'axes');
    if (a) return a;
    const v = n.inputs[inputIndex] ? this.constantValues(n.inputs[inputIndex]) : undefined;
    return v ? Array.from(v) : undefined;
  }

  /** Values of a small constant (initializer, Constant node of any kind, or simple ops on them). */
  constantValues(value: string, limit = 1 << 20): Float64Array | undefined {
    const key = `${value}\u0000${limit}`;
    if (!this.valueCache.has(key)) this.valueCache.set(key, this.computeValues(value, limit, 0) ?? null);
    return this.valueCache.get(key) ?? undefined;
  }

  private computeValues(value: string, limit: number, depth: number): Float64Array | undefined {
    if (depth > 16) return undefined;
    const t = this.storedTensor(value);
    if (t) {
      const e = this.entryOf(t);
      if (!e || !onnxType(t.dataType) || e.shape.reduce((a, b) => a * b, 1) > Math.max(limit, 1)) return undefined;
      return readNumbers(this.structure.model, t, e);
    }
    const p = this.producer.get(value);
    if (!p || p.output !== 0) return undefined;
    const n = p.node;
    const inner = () => (n.inputs[0] ? this.computeValues(n.inputs[0], limit, depth + 1) : undefined);
    switch (n.opType) {
      case 'Constant': {
        const a = n.attributes[0];
        if (!a) return undefined;
        if (a.name === 'value_float' && a.f !== undefined) return Float64Array.of(a.f);
        if (a.name === 'value_int' && a.i !== undefined) return Float64Array.of(a.i);
        if (a.name === 'value_floats') return Float64Array.from(a.floats);
        if (a.name === 'value_ints') return Float64Array.from(a.ints);
        return undefined;
      }
      case 'Identity':
      case 'Cast':
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Reshape':
        return inner();
      case 'Neg': {
        const v = inner();
        return v && v.map((x) => -x);
      }
      case 'Concat': {
        const parts = n.inputs.map((i) => (i ? this.computeValues(i, limit, depth + 1) : undefined));
        if (parts.some((x) => !x)) return undefined;
        return Float64Array.from(parts.flatMap((x) => Array.from(x!)));
      }
      case 'Shape': {
        const d = n.inputs[0] ? this.dims.get(n.inputs[0]) : undefined;
        if (!d || d.some((x) => x.syms.length > 0)) return undefined;
        return Float64Array.from(d, (x) => x.coef);
      }
      default:
        return this.folded(value, limit, depth + 1)?.data;
    }
  }

  /** A constant value with its shape, folded through the index arithmetic of fold.ts. */
  private folded(value: string, limit: number, depth: number): Folded | undefined {
    if (depth > 24) return undefined;
    const t = this.storedTensor(value);
    if (t) {
      const e = this.entryOf(t);
      if (!e || !onnxType(t.dataType) || e.shape.reduce((a, b) => a * b, 1) > Math.max(limit, 1)) return undefined;
      return { shape: [...t.dims], data: readNumbers(this.structure.model, t, e), integer: !FLOAT_CODES.has(t.dataType) };
    }
    const p = this.producer.get(value);
    if (!p || p.output !== 0) return undefined;
    const n = p.node;
    if (n.opType === 'Constant') {
      const data = this.computeValues(value, limit, depth + 1);
      const a = n.attributes[0];
      return data && { shape: a?.name === 'value_float' || a?.name === 'value_int' ? [] : [data.length], data, integer: a?.name === 'value_int' || a?.name === 'value_ints' };
    }
    if (n.opType === 'Shape') {
      const data = this.computeValues(value, limit, depth + 1);
      const d = n.inputs[0] ? this.dims.get(n.inputs[0]) : undefined;
      if (!data || !d) return undefined;
      const r = d.length;
      const norm = (x: number) => Math.min(Math.max(x < 0 ? x + r : x, 0), r);
      const part = data.slice(norm(attrInt(n, 'start', 0)), norm(attrInt(n, 'end', r)));
      return { shape: [part.length], data: part, integer: true };
    }
    const fill = (): Folded | undefined => {
      const t = attr(n, 'value')?.t;
      if (!t) return { shape: [1], data: Float64Array.of(0), integer: false };
      const e = this.entryOf(t);
      return e && onnxType(t.dataType) ? { shape: [...t.dims], data: readNumbers(this.structure.model, t, e), integer: !FLOAT_CODES.has(t.dataType) } : undefined;
    };
    return foldNode(n, (i) => (n.inputs[i] ? this.folded(n.inputs[i], limit, depth + 1) : undefined), limit, fill);
  }

  /** An int vector that may hold symbolic dims (Shape of a dynamic tensor, gathered and concatenated). */
  shapeValues(value: string, depth = 0): Dim[] | undefined {
    if (depth > 16) return undefined;
    const c = this.constantValues(value);
    if (c) return Array.from(c, (x) => num(x));
    const p = this.producer.get(value);
    if (!p || p.output !== 0) return undefined;
    const n = p.node;
    const sub = (i: number) => (n.inputs[i] ? this.shapeValues(n.inputs[i], depth + 1) : undefined);
    switch (n.opType) {
      case 'Shape': {
        const d = n.inputs[0] ? this.dims.get(n.inputs[0]) : undefined;
        if (!d) return undefined;
        const r = d.length;
        const norm = (x: number) => Math.min(Math.max(x < 0 ? x + r : x, 0), r);
        return d.slice(norm(attrInt(n, 'start', 0)), norm(attrInt(n, 'end', r)));
      }
      case 'Identity':
      case 'Cast':
      case 'Unsqueeze':
      case 'Squeeze':
        return sub(0);
      case 'Concat': {
        const parts = n.inputs.map((_, i) => sub(i));
        if (parts.some((x) => !x)) return undefined;
        return parts.flatMap((x) => x!);
      }
      case 'Gather': {
        const data = sub(0);
        const idx = n.inputs[1] ? this.constantValues(n.inputs[1]) : undefined;
        if (!data || !idx || attrInt(n, 'axis', 0) !== 0) return undefined;
        return Array.from(idx, (i) => data[i < 0 ? i + data.length : i]);
      }
      case 'Slice': {
        const data = sub(0);
        const starts = n.inputs[1] ? this.constantValues(n.inputs[1]) : undefined;
        const ends = n.inputs[2] ? this.constantValues(n.inputs[2]) : undefined;
        if (!data || !starts || !ends || starts.length !== 1) return undefined;
        const r = data.length;
        const norm = (x: number) => Math.min(Math.max(x < 0 ? x + r : x, 0), r);
        return data.slice(norm(starts[0]), norm(ends[0]));
      }
      default:
        return undefined;
    }
  }
}

function mapOpt<T, U>(v: T | undefined, f: (v: T) => U): U | undefined {
  return v === undefined ? undefined : f(v);
}

/** A reshape that only inserts or removes axes of size 1 keeps the stored axes: remap them. */
function onlyUnitAxesChange(v: ConstView, target: number[]): ConstView | undefined {
  const big = (s: readonly number[]) => s.map((d, i) => [d, i] as const).filter(([d]) => d !== 1);
  const from = big(v.shape);
  const to = big(target);
  if (from.length !== to.length || from.some(([d], k) => d !== to[k][0])) return undefined;
  if (v.pieces.length > 1 && v.shape[v.concatAxis] === 1) return undefined;
  const map = new Map<number, number>();
  from.forEach(([, i], k) => map.set(to[k][1], i));
  const concatAxis = v.pieces.length > 1 ? to[from.findIndex(([, i]) => i === v.concatAxis)][1] : 0;
  return {
    shape: target,
    pieces: v.pieces.map((pc) => ({ ...pc, axes: target.map((_, j) => (map.has(j) ? pc.axes[map.get(j)!] : null)) })),
    concatAxis,
    via: v.via,
  };
}
