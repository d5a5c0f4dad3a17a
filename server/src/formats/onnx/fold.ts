// Small constant folding for the index arithmetic exporters leave in graphs: PyTorch 1.13 writes
// F.pad's amounts as ConstantOfShape → Concat → Reshape → Slice(step −1) → Transpose → Reshape,
// and x.chunk(n, dim)'s bounds as Shape → Gather → Add → Div → Mul. Values with their shapes, so
// that Slice and Transpose of matrices come out right; integer division truncates as ONNX's Div does.
import { attrInt, attrInts } from './attrs';
import type { NodeRecord } from './proto';

export interface Folded {
  shape: number[];
  data: Float64Array;
  integer: boolean;
}

/** What folding a node needs from its graph: its inputs folded (undefined when they cannot be). */
export type FoldInput = (i: number) => Folded | undefined;

const FLOAT_CODES = new Set([1, 10, 11, 16]);

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Elementwise with numpy broadcasting. */
function binary(a: Folded, b: Folded, f: (x: number, y: number) => number): Folded | undefined {
  const rank = Math.max(a.shape.length, b.shape.length);
  const pa = [...new Array(rank - a.shape.length).fill(1), ...a.shape];
  const pb = [...new Array(rank - b.shape.length).fill(1), ...b.shape];
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) {
    if (pa[i] !== pb[i] && pa[i] !== 1 && pb[i] !== 1) return undefined;
    shape.push(Math.max(pa[i], pb[i]));
  }
  const sa = strides(pa);
  const sb = strides(pb);
  const so = strides(shape);
  const data = new Float64Array(size(shape));
  for (let k = 0; k < data.length; k++) {
    let ia = 0;
    let ib = 0;
    for (let i = 0; i < rank; i++) {
      const c = Math.floor(k / so[i]) % shape[i];
      if (pa[i] !== 1) ia += c * sa[i];
      if (pb[i] !== 1) ib += c * sb[i];
    }
    data[k] = f(a.data[ia], b.data[ib]);
  }
  return { shape, data, integer: a.integer && b.integer };
}

function slice(x: Folded, starts: Float64Array, ends: Float64Array, axes: number[], steps: Float64Array | undefined): Folded | undefined {
  const rank = x.shape.length;
  const lo = x.shape.map(() => 0);
  const step = x.shape.map(() => 1);
  const count = [...x.shape];
  for (let k = 0; k < starts.length; k++) {
    const a = axes[k] < 0 ? axes[k] + rank : axes[k];
    const d = x.shape[a];
    const st = steps ? steps[k] : 1;
    if (a < 0 || a >= rank || st === 0) return undefined;
    const norm = (v: number) => (v < 0 ? v + d : v);
    const clamp = (v: number, l: number, h: number) => Math.min(Math.max(v, l), h);
    const s = st > 0 ? clamp(norm(starts[k]), 0, d) : clamp(norm(starts[k]), -1, d - 1);
    const e = st > 0 ? clamp(norm(ends[k]), 0, d) : clamp(norm(ends[k]), -1, d - 1);
    lo[a] = s;
    step[a] = st;
    count[a] = Math.max(0, Math.ceil((e - s) / st));
  }
  const sx = strides(x.shape);
  const so = strides(count);
  const data = new Float64Array(size(count));
  for (let k = 0; k < data.length; k++) {
    let i = 0;
    for (let j = 0; j < rank; j++) i += (lo[j] + (Math.floor(k / so[j]) % count[j]) * step[j]) * sx[j];
    data[k] = x.data[i];
  }
  return { shape: count, data, integer: x.integer };
}

function transpose(x: Folded, perm: readonly number[]): Folded | undefined {
  if (perm.length !== x.shape.length) return undefined;
  const shape = perm.map((p) => x.shape[p]);
  const sx = strides(x.shape);
  const so = strides(shape);
  const data = new Float64Array(x.data.length);
  for (let k = 0; k < data.length; k++) {
    let i = 0;
    for (let j = 0; j < shape.length; j++) i += (Math.floor(k / so[j]) % shape[j]) * sx[perm[j]];
    data[k] = x.data[i];
  }
  return { shape, data, integer: x.integer };
}

function reshape(x: Folded, spec: Float64Array, allowZero: boolean): Folded | undefined {
  const shape = Array.from(spec, (d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
  const minus = shape.indexOf(-1);
  if (minus >= 0) {
    const known = size(shape.filter((_, i) => i !== minus));
    if (known === 0 || x.data.length % known !== 0) return undefined;
    shape[minus] = x.data.length / known;
  }
  return size(shape) === x.data.length && shape.every((d) => d >= 0) ? { shape, data: x.data, integer: x.integer } : undefined;
}

/**
 * The value of node `n`'s first output, from its folded inputs; undefined for operators not folded
 * here or results over `limit` elements. Constant, Shape and stored tensors are the caller's.
 */
export function foldNode(n: NodeRecord, input: FoldInput, limit: number, constantOfShapeValue: () => Folded | undefined): Folded | undefined {
  const x = input(0);
  const ok = (f: Folded | undefined) => (f && f.data.length <= limit ? f : undefined);
  switch (n.opType) {
    case 'Identity':
      return x;
    case 'Cast':
      return x && { ...x, integer: !FLOAT_CODES.has(attrInt(n, 'to', 1)) };
    case 'Neg':
      return x && { ...x, data: x.data.map((v) => -v) };
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div': {
      const y = input(1);
      if (!x || !y) return undefined;
      const f = { Add: (p: number, q: number) => p + q, Sub: (p: number, q: number) => p - q, Mul: (p: number, q: number) => p * q, Div: (p: number, q: number) => p / q }[n.opType]!;
      const r = binary(x, y, f);
      return ok(r && n.opType === 'Div' && r.integer ? { ...r, data: r.data.map(Math.trunc) } : r);
    }
    case 'Reshape': {
      const spec = input(1);
      return x && spec ? reshape(x, spec.data, attrInt(n, 'allowzero', 0) === 1) : undefined;
    }
    case 'Flatten': {
      if (!x) return undefined;
      const r = x.shape.length;
      const a = attrInt(n, 'axis', 1) < 0 ? attrInt(n, 'axis', 1) + r : attrInt(n, 'axis', 1);
      return { shape: [size(x.shape.slice(0, a)), size(x.shape.slice(a))], data: x.data, integer: x.integer };
    }
    case 'Unsqueeze':
    case 'Squeeze': {
      if (!x) return undefined;
      const axes = n.inputs[1] ? input(1)?.data : attrInts(n, 'axes');
      if (n.opType === 'Squeeze') {
        const r = x.shape.length;
        const drop = new Set(axes ? Array.from(axes, (a) => (a < 0 ? a + r : a)) : x.shape.flatMap((d, i) => (d === 1 ? [i] : [])));
        return { ...x, shape: x.shape.filter((_, i) => !drop.has(i)) };
      }
      if (!axes) return undefined;
      const r = x.shape.length + axes.length;
      const shape = [...x.shape];
      for (const a of Array.from(axes, (v) => (v < 0 ? v + r : v)).sort((p, q) => p - q)) shape.splice(a, 0, 1);
      return { ...x, shape };
    }
    case 'Concat': {
      const parts = n.inputs.map((_, i) => input(i));
      if (parts.some((p) => !p)) return undefined;
      const ps = parts as Folded[];
      const rank = ps[0].shape.length;
      const a = attrInt(n, 'axis', 0) < 0 ? attrInt(n, 'axis', 0) + rank : attrInt(n, 'axis', 0);
      // Along the first axis (all that index arithmetic needs) the data simply follow each other.
      if (a !== 0 || ps.some((p) => p.shape.length !== rank || p.shape.slice(1).join() !== ps[0].shape.slice(1).join())) return undefined;
      return ok({ shape: [ps.reduce((s, p) => s + p.shape[0], 0), ...ps[0].shape.slice(1)], data: Float64Array.from(ps.flatMap((p) => Array.from(p.data))), integer: ps.every((p) => p.integer) });
    }
    case 'Gather': {
      const idx = input(1);
      if (!x || !idx || x.shape.length !== 1 || attrInt(n, 'axis', 0) !== 0) return undefined;
      const d = x.shape[0];
      const data = idx.data.map((i) => x.data[i < 0 ? i + d : i]);
      return data.some((v) => v === undefined) ? undefined : { shape: idx.shape, data, integer: x.integer };
    }
    case 'Slice': {
      const [starts, ends] = [input(1), input(2)];
      if (!x || !starts || !ends) return undefined;
      const axes = n.inputs[3] ? input(3)?.data : undefined;
      if (n.inputs[3] && !axes) return undefined;
      const steps = n.inputs[4] ? input(4)?.data : undefined;
      if (n.inputs[4] && !steps) return undefined;
      return slice(x, starts.data, ends.data, axes ? Array.from(axes) : Array.from(starts.data, (_, i) => i), steps);
    }
    case 'Transpose': {
      if (!x) return undefined;
      return transpose(x, attrInts(n, 'perm') ?? x.shape.map((_, i) => x.shape.length - 1 - i));
    }
    case 'ConstantOfShape': {
      const shape = x ? Array.from(x.data) : undefined;
      const v = constantOfShapeValue();
      if (!shape || !v || size(shape) > limit) return undefined;
      return { shape, data: new Float64Array(size(shape)).fill(v.data[0] ?? 0), integer: v.integer };
    }
    default:
      return undefined;
  }
}
