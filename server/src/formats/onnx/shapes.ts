// Shapes of the values in a graph, for the operators the graph builder follows. Exporters such as
// torch 1.13 write no value_info, so the builder cannot rely on the file for the spatial size
// behind a Flatten or the rank behind a Transpose. Dimensions the rules cannot tell become fresh
// symbols: unknown but consistent where they are copied.
import { dimDiv, dimEquals, dimMul, dimProduct, isNumber, num, sym, type Dim } from './dims';
import type { ValueInfoRecord, NodeRecord } from './proto';
import { attrInt, attrInts, attrString } from './attrs';
import type { GraphView } from './graphView';

const SAME_SHAPE = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'Tanh', 'Abs', 'Neg', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Elu', 'Selu',
  'Celu', 'Softplus', 'Softsign', 'HardSigmoid', 'HardSwish', 'Gelu', 'Erf', 'Identity', 'Dropout', 'Cast', 'CastLike',
  'Clip', 'BatchNormalization', 'InstanceNormalization', 'LayerNormalization', 'LRN', 'Softmax', 'LogSoftmax',
  'Hardmax', 'Floor', 'Ceil', 'Round', 'Sign', 'Sin', 'Cos', 'Mish', 'ThresholdedRelu', 'Not', 'IsNaN', 'Shrink',
  'QuantizeLinear', 'DequantizeLinear', 'GroupNormalization', 'MeanVarianceNormalization',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor', 'Where', 'Mod', 'BitShift']);
const POOLS = new Set(['MaxPool', 'AveragePool', 'LpPool']);
const GLOBAL_POOLS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceL1', 'ReduceL2', 'ReduceProd', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp']);

function declared(v: ValueInfoRecord): Dim[] | undefined {
  return v.dims?.map((d, i) => (d.value !== undefined && d.value > 0 ? num(d.value) : d.param ? sym(d.param) : sym(`?${v.name}#${i}`)));
}

function broadcast(shapes: Dim[][], fresh: (i: number) => Dim): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim | undefined;
    for (const s of shapes) {
      const x = s[s.length - rank + i];
      if (!x || (isNumber(x) && x.coef === 1)) continue;
      if (!d) d = x;
      else if (!dimEquals(d, x)) d = isNumber(d) && !isNumber(x) ? d : isNumber(x) && !isNumber(d) ? x : fresh(i);
    }
    out.push(d ?? num(1));
  }
  return out;
}

/** Output size of a sliding window (conv, pooling) along one spatial axis. */
function windowOut(inDim: Dim, k: number, stride: number, padSum: number, dilation: number, ceil: boolean, autoPad: string): Dim | undefined {
  if (!isNumber(inDim)) return undefined;
  const x = inDim.coef;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return num(Math.ceil(x / stride));
  const pad = autoPad === 'VALID' ? 0 : padSum;
  const span = x + pad - dilation * (k - 1) - 1;
  return num((ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1);
}

export function inferShapes(view: GraphView, dims: Map<string, Dim[]>): void {
  const g = view.graph;
  for (const v of [...g.inputs, ...g.valueInfo, ...g.outputs]) {
    const d = declared(v);
    if (d && !dims.has(v.name)) dims.set(v.name, d);
  }
  for (const t of g.initializers) dims.set(t.name, t.dims.map((d) => num(d)));
  for (const n of view.order) {
    let outs: (Dim[] | undefined)[] = [];
    try {
      outs = infer(view, dims, n);
    } catch {
      outs = [];
    }
    n.outputs.forEach((o, k) => {
      if (!o || dims.has(o)) return;
      const d = outs[k];
      // A corrupt attribute can make a rule produce a negative or fractional size: unknown instead.
      if (d) dims.set(o, d.map((x, i) => (x && Number.isInteger(x.coef) && x.coef >= 0 && (x.syms.length === 0 || x.coef > 0) ? x : sym(`?${o}#${i}`))));
    });
  }
}

function infer(view: GraphView, dims: Map<string, Dim[]>, n: NodeRecord): (Dim[] | undefined)[] {
  const input = (i: number) => (n.inputs[i] ? dims.get(n.inputs[i]) : undefined);
  const fresh = (i: number) => sym(`?${n.outputs[0]}#${i}`);
  const x = input(0);
  const op = n.opType;
  if (op === 'Constant') {
    const t = n.attributes[0]?.t;
    if (t) return [t.dims.map((d) => num(d))];
    const a = n.attributes[0];
    return [a && (a.name === 'value_floats' || a.name === 'value_ints') ? [num(a.floats.length || a.ints.length)] : []];
  }
  if (SAME_SHAPE.has(op)) return x ? n.outputs.map((_, k) => (k === 0 || op === 'Dropout' ? x : undefined)) : [];
  if (BROADCAST.has(op)) {
    const all = n.inputs.map((_, i) => input(i));
    if (all.every(Boolean)) return [broadcast(all as Dim[][], fresh)];
    // One side unknown: two computed values (a residual join) have the same shape, so the known
    // side gives it, rather than the unknown cascading into every value after the join. Not so a
    // constant side (a bias of shape [C] says nothing of the other side's rank).
    const known = n.inputs.flatMap((v, i) => (all[i] && v && !view.isConstant(v) ? [all[i]!] : []));
    return known.length > 0 && n.inputs.length === 2 && !view.isConstant(n.inputs[all[0] ? 1 : 0]) && ['Add', 'Sub', 'Mul', 'Max', 'Min', 'Sum', 'Mean'].includes(op) ? [broadcast(known, fresh)] : [];
  }
  if (!x && op !== 'ConstantOfShape') return [];
  const shapeOf = x ?? [];
  const rank = shapeOf.length;
  const axis = (a: number, r = rank) => (a < 0 ? a + r : a);
  switch (op) {
    case 'Gemm': {
      const b = input(1);
      if (!b || rank !== 2 || b.length !== 2) return [];
      const m = attrInt(n, 'transA', 0) ? shapeOf[1] : shapeOf[0];
      const nn = attrInt(n, 'transB', 0) ? b[0] : b[1];
      return [[m, nn]];
    }
    case 'MatMul': {
      const b = input(1);
      if (!b || rank === 0 || b.length === 0) return [];
      const a2 = rank === 1 ? [num(1), shapeOf[0]] : shapeOf;
      const b2 = b.length === 1 ? [b[0], num(1)] : b;
      const batch = broadcast([a2.slice(0, -2), b2.slice(0, -2)], fresh);
      const out = [...batch, a2[a2.length - 2], b2[b2.length - 1]];
      if (rank === 1) out.splice(out.length - 2, 1);
      if (b.length === 1) out.pop();
      return [out];
    }
    case 'Conv':
    case 'ConvTranspose': {
      const w = input(1);
      if (!w || rank < 3) return [];
      const spatial = rank - 2;
      const k = attrInts(n, 'kernel_shape') ?? w.slice(2).map((d) => (isNumber(d) ? d.coef : NaN));
      const strides = attrInts(n, 'strides') ?? new Array(spatial).fill(1);
      const dil = attrInts(n, 'dilations') ?? new Array(spatial).fill(1);
      const pads = attrInts(n, 'pads') ?? new Array(2 * spatial).fill(0);
      const autoPad = attrString(n, 'auto_pad', 'NOTSET');
      const channels = op === 'Conv' ? w[0] : dimMul(w[1], num(attrInt(n, 'group', 1)));
      const out: Dim[] = [shapeOf[0], channels];
      for (let i = 0; i < spatial; i++) {
        if (op === 'Conv') out.push(windowOut(shapeOf[2 + i], k[i], strides[i], pads[i] + pads[i + spatial], dil[i], false, autoPad) ?? fresh(2 + i));
        else {
          const given = attrInts(n, 'output_shape');
          const opad = attrInts(n, 'output_padding')?.[i] ?? 0;
          const inD = shapeOf[2 + i];
          out.push(given ? num(given[i]) : isNumber(inD) ? num(strides[i] * (inD.coef - 1) + opad + (k[i] - 1) * dil[i] + 1 - pads[i] - pads[i + spatial]) : fresh(2 + i));
        }
      }
      return [out];
    }
    case 'MaxPool':
    case 'AveragePool':
    case 'LpPool': {
      if (!POOLS.has(op) || rank < 3) return [];
      const spatial = rank - 2;
      const k = attrInts(n, 'kernel_shape') ?? [];
      const strides = attrInts(n, 'strides') ?? new Array(spatial).fill(1);
      const dil = attrInts(n, 'dilations') ?? new Array(spatial).fill(1);
      const pads = attrInts(n, 'pads') ?? new Array(2 * spatial).fill(0);
      const autoPad = attrString(n, 'auto_pad', 'NOTSET');
      const ceil = attrInt(n, 'ceil_mode', 0) === 1;
      const out: Dim[] = [shapeOf[0], shapeOf[1]];
      for (let i = 0; i < spatial; i++) out.push(windowOut(shapeOf[2 + i], k[i], strides[i], pads[i] + pads[i + spatial], dil[i], ceil, autoPad) ?? fresh(2 + i));
      return [out, out];
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
    case 'GlobalLpPool':
      return GLOBAL_POOLS.has(op) ? [[shapeOf[0], shapeOf[1], ...shapeOf.slice(2).map(() => num(1))]] : [];
    case 'Flatten': {
      const a = axis(attrInt(n, 'axis', 1));
      return [[dimProduct(shapeOf.slice(0, a)), dimProduct(shapeOf.slice(a))]];
    }
    case 'Reshape': {
      const spec = n.inputs[1] ? view.shapeValues(n.inputs[1]) : undefined;
      if (!spec) {
        // The target computed at run time: its length still gives the rank.
        const len = n.inputs[1] ? input(1) : undefined;
        return len && len.length === 1 && isNumber(len[0]) ? [Array.from({ length: len[0].coef }, (_, i) => fresh(i))] : [];
      }
      const allowZero = attrInt(n, 'allowzero', 0) === 1;
      const out: (Dim | undefined)[] = spec.map((d, i) => (!allowZero && isNumber(d) && d.coef === 0 ? shapeOf[i] : d));
      const minus = out.findIndex((d) => d && isNumber(d) && d.coef === -1);
      if (minus >= 0) {
        const known = dimProduct(out.filter((_, i) => i !== minus) as Dim[]);
        out[minus] = dimDiv(dimProduct(shapeOf), known) ?? fresh(minus);
      }
      return [out.map((d, i) => d ?? fresh(i))];
    }
    case 'Transpose': {
      const perm = attrInts(n, 'perm') ?? shapeOf.map((_, i) => rank - 1 - i);
      return [perm.map((p) => shapeOf[p])];
    }
    case 'Squeeze': {
      const axes = view.axesOf(n, 1);
      const drop = new Set((axes ?? shapeOf.map((d, i) => (isNumber(d) && d.coef === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => axis(a)));
      return [shapeOf.filter((_, i) => !drop.has(i))];
    }
    case 'Unsqueeze': {
      const axes = view.axesOf(n, 1);
      if (!axes) return [];
      const r = rank + axes.length;
      const out = [...shapeOf];
      for (const a of axes.map((a) => axis(a, r)).sort((p, q) => p - q)) out.splice(a, 0, num(1));
      return [out];
    }
    case 'Concat': {
      const all = n.inputs.map((_, i) => input(i));
      if (all.some((s) => !s)) return [];
      const a = axis(attrInt(n, 'axis', 0));
      const out = [...shapeOf];
      const parts = all.map((s) => s![a]);
      out[a] = parts.every(isNumber) ? num(parts.reduce((s, d) => s + d.coef, 0)) : fresh(a);
      return [out];
    }
    case 'Gather': {
      const idx = input(1);
      if (!idx) return [];
      const a = axis(attrInt(n, 'axis', 0));
      return [[...shapeOf.slice(0, a), ...idx, ...shapeOf.slice(a + 1)]];
    }
    case 'Slice': {
      const starts = n.inputs[1] ? view.constantValues(n.inputs[1]) : attrInts(n, 'starts');
      const ends = n.inputs[2] ? view.constantValues(n.inputs[2]) : attrInts(n, 'ends');
      const axesV = n.inputs[3] ? view.constantValues(n.inputs[3]) : attrInts(n, 'axes');
      const steps = n.inputs[4] ? view.constantValues(n.inputs[4]) : undefined;
      if (!starts || !ends) return [];
      const out = [...shapeOf];
      Array.from(starts).forEach((s, k) => {
        const a = axis(axesV ? axesV[k] : k);
        const d = shapeOf[a];
        const step = steps ? steps[k] : 1;
        if (!isNumber(d)) {
          out[a] = fresh(a);
          return;
        }
        const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
        const norm = (v: number) => (v < 0 ? v + d.coef : v);
        const lo = step > 0 ? clamp(norm(s), 0, d.coef) : clamp(norm(s), -1, d.coef - 1);
        const hi = step > 0 ? clamp(norm(ends[k]), 0, d.coef) : clamp(norm(ends[k]), -1, d.coef - 1);
        out[a] = num(Math.max(0, Math.ceil((hi - lo) / step)));
      });
      return [out];
    }
    case 'RNN':
    case 'GRU':
    case 'LSTM': {
      const hidden = attrInt(n, 'hidden_size', 0);
      const dirs = attrString(n, 'direction', 'forward') === 'bidirectional' ? 2 : 1;
      if (rank !== 3 || hidden <= 0) return [];
      const batchFirst = attrInt(n, 'layout', 0) === 1;
      const [seq, batch] = batchFirst ? [shapeOf[1], shapeOf[0]] : [shapeOf[0], shapeOf[1]];
      const y = batchFirst ? [batch, seq, num(dirs), num(hidden)] : [seq, num(dirs), batch, num(hidden)];
      const h = batchFirst ? [batch, num(dirs), num(hidden)] : [num(dirs), batch, num(hidden)];
      return [y, h, h];
    }
    case 'Split': {
      const a = axis(attrInt(n, 'axis', 0));
      const sizes = attrInts(n, 'split') ?? (n.inputs[1] ? Array.from(view.constantValues(n.inputs[1]) ?? []) : undefined);
      const d = shapeOf[a];
      return n.outputs.map((_, k) => {
        const out = [...shapeOf];
        if (sizes && sizes.length === n.outputs.length) out[a] = num(sizes[k]);
        else if (isNumber(d) && d.coef % n.outputs.length === 0) out[a] = num(d.coef / n.outputs.length);
        else out[a] = fresh(a);
        return out;
      });
    }
    case 'Pad': {
      const pads = n.inputs[1] ? view.constantValues(n.inputs[1]) : attrInts(n, 'pads');
      if (!pads || pads.length !== 2 * rank) return [];
      return [shapeOf.map((d, i) => (pads[i] === 0 && pads[i + rank] === 0 ? d : isNumber(d) ? num(d.coef + pads[i] + pads[i + rank]) : fresh(i)))];
    }
    case 'Shape':
      return [[num(rank)]];
    case 'ConstantOfShape': {
      const v = n.inputs[0] ? view.shapeValues(n.inputs[0]) : undefined;
      return v ? [v] : [];
    }
    case 'Resize':
    case 'Upsample': {
      const sizes = n.inputs[3] ? view.constantValues(n.inputs[3]) : undefined;
      if (sizes && sizes.length === rank) return [Array.from(sizes, (s) => num(s))];
      const scales = op === 'Upsample' ? (n.inputs[1] ? view.constantValues(n.inputs[1]) : attr(n, 'scales')) : n.inputs[2] ? view.constantValues(n.inputs[2]) : undefined;
      if (!scales || scales.length !== rank) return [];
      return [shapeOf.map((d, i) => (scales[i] === 1 ? d : isNumber(d) ? num(Math.floor(d.coef * scales[i])) : fresh(i)))];
    }
    case 'Expand': {
      const to = n.inputs[1] ? view.shapeValues(n.inputs[1]) : undefined;
      return to ? [broadcast([shapeOf, to], fresh)] : [];
    }
    case 'Tile': {
      const reps = n.inputs[1] ? view.constantValues(n.inputs[1]) : undefined;
      if (!reps) return [];
      return [shapeOf.map((d, i) => (reps[i] === 1 ? d : isNumber(d) ? num(d.coef * reps[i]) : fresh(i)))];
    }
    default:
      if (REDUCE.has(op)) {
        const axes = view.axesOf(n, 1);
        const keep = attrInt(n, 'keepdims', 1) === 1;
        const all = !axes || axes.length === 0;
        if (all && attrInt(n, 'noop_with_empty_axes', 0) === 1) return [shapeOf];
        const set = new Set((all ? shapeOf.map((_, i) => i) : axes).map((a) => axis(a)));
        const out: Dim[] = [];
        shapeOf.forEach((d, i) => {
          if (!set.has(i)) out.push(d);
          else if (keep) out.push(num(1));
        });
        return [out];
      }
      return [];
  }
}

function attr(n: NodeRecord, name: string): number[] | undefined {
  const a = n.attributes.find((x) => x.name === name);
  return a ? (a.floats.length ? a.floats : a.ints) : undefined;
}
