// Which ONNX operators let a positive per-channel scale through, and how they move the channel
// axis. Scaling unit i by λ > 0 is exact only if every operator between its layer and the next
// one commutes with it: f(λx) = λ f(x) per channel. Anything not listed here stops the scale,
// and the units behind it stay visible, with the operator named as the reason.
import { identity, leakyRelu, other, prelu, relu, type Activation, type BiLU } from '../../../engine/activation';
import { attr, attrFloat, attrInt, attrInts, attrString, nodeLabel } from '../attrs';
import { isNumber, type Dim } from '../dims';
import type { GraphView } from '../graphView';
import type { NodeRecord } from '../proto';

/** Where a group's units sit in one value: along `axis`, from element `start`, `inner` elements each. */
export interface ChannelState {
  axis: number;
  rank: number;
  start: number;
  /** Elements per unit along the axis (> 1 after a channel-major Flatten); 0 while unknown. */
  inner: number;
}

export interface PassInput {
  view: GraphView;
  node: NodeRecord;
  /** Which input of the node carries the units. */
  input: number;
  state: ChannelState;
  /** Units in the group. */
  units: number;
}

export type Pass =
  /** The scale passes on to these outputs; `activation` when the node is one (composed by the caller). */
  | { kind: 'pass'; outputs: { output: number; state: ChannelState }[]; activation?: Activation }
  /** Elementwise per channel but not homogeneous: the units stay visible; later layers still read them. */
  | { kind: 'fixed'; reason: string; activation: Activation; outputs: { output: number; state: ChannelState }[] }
  | { kind: 'stop'; reason: string };

const NOT_HOMOGENEOUS = new Set([
  'Sigmoid', 'Tanh', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'HardSigmoid', 'HardSwish', 'Gelu', 'Erf', 'Mish',
  'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Sin', 'Cos', 'Tan', 'Sign', 'Floor', 'Ceil', 'Round', 'Shrink', 'Atan', 'Sinh', 'Cosh',
]);

/** Operators that stop a scale, with why (for the reasons shown on the units). */
const STOP_REASONS: Record<string, string> = {
  Softmax: 'normalizes across units',
  LogSoftmax: 'normalizes across units',
  Hardmax: 'compares units with each other',
  LayerNormalization: 'normalizes across units (a scaled unit changes the mean and variance)',
  InstanceNormalization: 'normalizes each channel, which removes its scale',
  GroupNormalization: 'normalizes across channels',
  MeanVarianceNormalization: 'normalizes the values',
  LpNormalization: 'normalizes across units',
  LRN: 'normalizes across channels',
  LSTM: 'has sigmoid/tanh gates, which are not positively homogeneous',
  GRU: 'has sigmoid/tanh gates, which are not positively homogeneous',
  Attention: 'mixes units through a softmax',
  MultiHeadAttention: 'mixes units through a softmax',
  If: 'runs a subgraph the builder does not follow',
  Loop: 'runs a subgraph the builder does not follow',
  Scan: 'runs a subgraph the builder does not follow',
  QuantizeLinear: 'quantizes the values',
  DequantizeLinear: 'dequantizes quantized values',
  Einsum: 'contracts axes the builder does not follow',
  Pow: 'is not positively homogeneous of degree 1',
  ReduceProd: 'is not positively homogeneous of degree 1',
  ReduceSumSquare: 'is not positively homogeneous of degree 1',
  ReduceLogSum: 'is not positively homogeneous',
  ReduceLogSumExp: 'is not positively homogeneous',
  // Scaling commutes with both, but the network model cannot say so: DepthToSpace makes one output
  // channel of r² input channels, which would have to share one scale (a tie between units of one
  // group); SpaceToDepth spreads each channel over r² output channels C apart. PyTorch exports
  // PixelUnshuffle as Reshape → Transpose → Reshape instead, which passes (r² contiguous channels).
  DepthToSpace: 'makes one output channel of r² input channels, which would have to share one scale (a tie between units of one layer that the network model does not express)',
  SpaceToDepth: 'spreads each channel over r² output channels C apart, which the network model does not place (a unit must cover one contiguous range)',
  ArgMax: 'returns indices',
  ArgMin: 'returns indices',
  TopK: 'returns a selection by value',
  // Layers reach here only when their weights are not constant stored tensors.
  Gemm: 'multiplies by weights that are not stored constants (computed at run time, or dequantized)',
  MatMul: 'multiplies by weights that are not stored constants (computed at run time, or dequantized)',
  Conv: 'convolves with weights that are not stored constants (computed at run time, or dequantized)',
  ConvTranspose: 'convolves with weights that are not stored constants, or in groups',
  RNN: 'has weights that are not stored constants',
};

export function stopReason(op: string): string {
  return STOP_REASONS[op] ?? 'is not known to pass a positive per-channel scale through';
}

const same = (state: ChannelState, output = 0) => ({ kind: 'pass' as const, outputs: [{ output, state }] });
const stop = (reason: string): Pass => ({ kind: 'stop', reason });

function constValues(p: PassInput, index: number): Float64Array | undefined {
  const v = p.node.inputs[index];
  return v ? p.view.constantValues(v) : undefined;
}

/** The channel axis of `p`'s value as seen by a broadcast operand of rank `rank`; -1 when not there. */
function alignedAxis(p: PassInput, rank: number): number {
  return p.state.axis - (p.state.rank - rank);
}

/** PReLU slopes for each unit when they are per channel; a single slope; or mixed (still BiLU). */
function preluOf(p: PassInput): Activation | undefined {
  const slopeValue = p.node.inputs[1];
  const values = slopeValue ? p.view.constantValues(slopeValue) : undefined;
  const shape = slopeValue ? p.view.dims.get(slopeValue) : undefined;
  if (!values || !shape) return undefined;
  if (values.every((v) => v === values[0])) return { ...leakyRelu(values[0]), name: 'prelu' };
  const a = alignedAxis(p, shape.length);
  const alongOnly = shape.every((d, i) => (i === a ? true : isNumber(d) && d.coef === 1));
  if (a >= 0 && alongOnly && p.state.inner === 1) {
    return prelu(Array.from({ length: p.units }, (_, u) => values[p.state.start + u]));
  }
  // Slopes that vary within a unit (by position) keep the unit positively homogeneous.
  const mixed: BiLU = { kind: 'bilu', neg: values[0], pos: 1, name: 'prelu (slopes vary by position)' };
  return mixed;
}

function clipOf(p: PassInput): Pass {
  // Opset 11 moved the bounds from attributes to inputs.
  const opset11 = p.node.inputs.length > 1 || (!attr(p.node, 'min') && !attr(p.node, 'max'));
  const lo = opset11 ? (p.node.inputs[1] ? constValues(p, 1)?.[0] : -Infinity) : attrFloat(p.node, 'min', -Infinity);
  const hi = opset11 ? (p.node.inputs[2] ? constValues(p, 2)?.[0] : Infinity) : attrFloat(p.node, 'max', Infinity);
  if (lo === undefined || hi === undefined) return stop('has bounds computed at run time');
  const bounds = `Clip(min=${lo}, max=${hi})`;
  if (lo === 0 && hi === Infinity) return { ...same(p.state), activation: relu() };
  if (lo === -Infinity && hi === Infinity) return { ...same(p.state), activation: identity() };
  if (lo === -Infinity && hi === 0) return { ...same(p.state), activation: { kind: 'bilu', neg: 1, pos: 0, name: 'min(x, 0)' } };
  return { kind: 'fixed', reason: `feeds ${bounds}${lo === 0 && hi === 6 ? ' (ReLU6)' : ''} in node '${nodeLabel(p.node)}', which is not positively homogeneous`, activation: other(`${bounds}${lo === 0 && hi === 6 ? ' (ReLU6)' : ''}`), outputs: [{ output: 0, state: p.state }] };
}

/** Max(x, c) / Min(x, c): ReLU-like for c = 0 only. */
function maxMinOf(p: PassInput): Pass {
  if (p.node.inputs.length !== 2) return stop(`${p.node.opType} of more than two values is not followed`);
  const c = constValues(p, 1 - p.input);
  if (!c) return stop(`${p.node.opType} of two computed values is not followed`);
  if (c.every((v) => v === 0)) {
    const a: BiLU = p.node.opType === 'Max' ? relu() : { kind: 'bilu', neg: 1, pos: 0, name: 'min(x, 0)' };
    return { ...same(p.state), activation: a };
  }
  const shown = c.length === 1 ? String(c[0]) : 'a nonzero constant';
  return { kind: 'fixed', reason: `feeds ${p.node.opType}(x, ${shown}) in node '${nodeLabel(p.node)}'; with c ≠ 0 it is not positively homogeneous`, activation: other(`${p.node.opType}(x, ${shown})`), outputs: [{ output: 0, state: p.state }] };
}

function normAxis(a: number, rank: number): number {
  return a < 0 ? a + rank : a;
}

/** The channel axis after Flatten(axis): inner grows by the trailing dims it merges. */
function flattenOf(p: PassInput, dims: readonly Dim[] | undefined): Pass {
  const { state } = p;
  const a = normAxis(attrInt(p.node, 'axis', 1), state.rank);
  if (state.axis < a) return stop(`Flatten(axis=${a}) merges the unit axis ${state.axis} with the batch`);
  const merged = dims?.slice(a);
  if (!merged) return stop('Flatten of a value of unknown shape');
  // Element index along the new axis: ((i_a · d_{a+1} + …) …): the unit axis and everything after it.
  let before = 1;
  for (let i = a; i < state.axis; i++) {
    const d = merged[i - a];
    if (!isNumber(d) || d.coef !== 1) return stop(`Flatten(axis=${a}) puts axes before the unit axis into it`);
    before *= d.coef;
  }
  let after = 1;
  for (let i = state.axis + 1; i < state.rank; i++) {
    const d = merged[i - a];
    if (!isNumber(d)) return stop('Flatten over a dimension of unknown size');
    after *= d.coef;
  }
  const inner = state.inner === 0 ? 0 : state.inner * after;
  return same({ axis: 1, rank: 2, start: state.start * after, inner });
}

/**
 * Reshape that keeps the units apart: the axes before the unit axis keep their product (the batch),
 * and the unit axis starts a new axis that takes whole trailing dims (a flatten) or stays as it is.
 */
function reshapeOf(p: PassInput, inDims: readonly Dim[] | undefined, outDims: readonly Dim[] | undefined): Pass {
  const { state } = p;
  if (!inDims || !outDims) return stop('Reshape to a shape the builder cannot tell');
  const prod = (ds: readonly Dim[]) => ds.reduce((acc, d) => ({ coef: acc.coef * d.coef, syms: [...acc.syms, ...d.syms].sort() }), { coef: 1, syms: [] as string[] });
  const eq = (x: Dim, y: Dim) => x.coef === y.coef && x.syms.join() === y.syms.join();
  const lead = prod(inDims.slice(0, state.axis));
  for (let j = 0; j < outDims.length; j++) {
    if (!eq(prod(outDims.slice(0, j)), lead)) continue;
    // Output axis j must hold the unit axis and a whole number of trailing input axes.
    let after = 1;
    for (let k = state.axis; k < inDims.length; k++) {
      const d = inDims[k];
      if (k > state.axis) {
        if (!isNumber(d)) break;
        after *= d.coef;
      }
      const covered = prod(inDims.slice(state.axis, k + 1));
      if (eq(covered, outDims[j])) {
        return same({ axis: j, rank: outDims.length, start: state.start * after, inner: state.inner === 0 ? 0 : state.inner * after });
      }
    }
  }
  // Splitting the unit axis back apart (an unflatten): whole units land on one output axis when the
  // axes after it hold a whole number of each unit's elements.
  const extent = inDims[state.axis];
  if (state.inner > 0 && isNumber(extent)) {
    for (let j = 0; j < outDims.length; j++) {
      if (!eq(prod(outDims.slice(0, j)), lead)) continue;
      const rest = prod(outDims.slice(j + 1));
      const here = outDims[j];
      if (rest.syms.length > 0 || !isNumber(here) || here.coef * rest.coef !== extent.coef) continue;
      if (state.inner % rest.coef === 0 && state.start % rest.coef === 0) {
        return same({ axis: j, rank: outDims.length, start: state.start / rest.coef, inner: state.inner / rest.coef });
      }
    }
  }
  return stop('Reshape mixes the unit axis with others');
}

function transposeOf(p: PassInput): Pass {
  const { state } = p;
  const perm = attrInts(p.node, 'perm') ?? Array.from({ length: state.rank }, (_, i) => state.rank - 1 - i);
  if (perm.length !== state.rank) return stop('Transpose with a permutation of another rank');
  return same({ ...state, axis: perm.indexOf(state.axis) });
}

function squeezeOf(p: PassInput, dims: readonly Dim[] | undefined): Pass {
  const { state } = p;
  const axes = p.view.axesOf(p.node, 1) ?? dims?.map((d, i) => (isNumber(d) && d.coef === 1 ? i : -1)).filter((i) => i >= 0);
  if (!axes) return stop('Squeeze of axes the builder cannot tell');
  const set = new Set(axes.map((a) => normAxis(a, state.rank)));
  if (set.has(state.axis)) return stop('Squeeze removes the unit axis');
  let axis = state.axis;
  for (const a of set) if (a < state.axis) axis--;
  return same({ ...state, axis, rank: state.rank - set.size });
}

function unsqueezeOf(p: PassInput): Pass {
  const { state } = p;
  const axes = p.view.axesOf(p.node, 1);
  if (!axes) return stop('Unsqueeze of axes the builder cannot tell');
  const rank = state.rank + axes.length;
  let axis = state.axis;
  for (const a of axes.map((x) => normAxis(x, rank)).sort((x, y) => x - y)) if (a <= axis) axis++;
  return same({ ...state, axis, rank });
}

/** Slice/Gather/Split along another axis select positions, not units. */
function sliceOf(p: PassInput): Pass {
  if (p.input !== 0) return stop('uses the units as slicing parameters');
  const axes = p.node.inputs[3] ? constValues(p, 3) : attrInts(p.node, 'axes');
  const starts = p.node.inputs[1] ? constValues(p, 1) : attrInts(p.node, 'starts');
  if (!starts) return stop('Slice with bounds computed at run time');
  const list = axes ? Array.from(axes) : Array.from(starts, (_, i) => i);
  if (list.some((a) => normAxis(a, p.state.rank) === p.state.axis)) return stop('Slice cuts the unit axis');
  return same(p.state);
}

function gatherOf(p: PassInput): Pass {
  if (p.input !== 0) return stop('uses the units as indices');
  const a = normAxis(attrInt(p.node, 'axis', 0), p.state.rank);
  if (a === p.state.axis) return stop('Gather picks along the unit axis');
  const idx = p.node.inputs[1] ? p.view.dims.get(p.node.inputs[1]) : undefined;
  if (!idx) return stop('Gather with indices of unknown rank');
  const rank = p.state.rank - 1 + idx.length;
  return same({ ...p.state, rank, axis: a < p.state.axis ? p.state.axis - 1 + idx.length : p.state.axis });
}

function reduceOf(p: PassInput): Pass {
  if (!['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceL1', 'ReduceL2'].includes(p.node.opType)) return stop(stopReason(p.node.opType));
  const axes = p.view.axesOf(p.node, 1);
  if (!axes || axes.length === 0) return stop(`${p.node.opType} over all axes mixes units`);
  const set = new Set(axes.map((a) => normAxis(a, p.state.rank)));
  if (set.has(p.state.axis)) return stop(`${p.node.opType} over the unit axis mixes units`);
  if (attrInt(p.node, 'keepdims', 1) === 1) return same(p.state);
  let axis = p.state.axis;
  for (const a of set) if (a < p.state.axis) axis--;
  return same({ ...p.state, axis, rank: p.state.rank - set.size });
}

function padOf(p: PassInput): Pass {
  if (p.input !== 0) return stop('uses the units as padding parameters');
  const mode = attrString(p.node, 'mode', 'constant');
  const pads = p.node.inputs[1] ? constValues(p, 1) : attrInts(p.node, 'pads');
  if (!pads) return stop('Pad with amounts computed at run time');
  const fill = p.node.inputs[2] ? constValues(p, 2)?.[0] : attrFloat(p.node, 'value', 0);
  // Reflect and edge padding copy values of the same channel; constant padding must add zeros.
  if (mode === 'constant' && fill !== 0) return stop(`Pad with the constant ${fill ?? '(computed)'} is not positively homogeneous`);
  const { axis, rank } = p.state;
  if (pads.length === 2 * rank && (pads[axis] !== 0 || pads[axis + rank] !== 0)) return stop('Pad along the unit axis');
  return same(p.state);
}

function concatOf(p: PassInput): Pass {
  const { state, view, node } = p;
  const a = normAxis(attrInt(node, 'axis', 0), state.rank);
  if (a !== state.axis) return stop('Concat along another axis joins values of different units');
  let offset = 0;
  for (let i = 0; i < p.input; i++) {
    const d = node.inputs[i] ? view.dims.get(node.inputs[i])?.[a] : undefined;
    if (!isNumber(d)) return stop('Concat after an input of unknown size');
    offset += d.coef;
  }
  return same({ ...state, start: state.start + offset });
}

/**
 * Resize/Upsample interpolate within each channel: every output value is a fixed linear combination
 * of one channel's inputs (nearest: one of them; linear: a convex combination; cubic: weights that
 * may be negative, but still fixed by the positions alone), so all three commute with a positive
 * per-channel scale exactly. Only what is not linear stops it: tf_crop_and_resize's extrapolation
 * value, written where the crop box leaves the image, unless it is 0; and a resize of the unit axis.
 */
function resizeOf(p: PassInput): Pass {
  if (p.input !== 0) return stop('uses the units as resize parameters');
  const { node, view, state } = p;
  if (node.opType === 'Resize' && attrString(node, 'coordinate_transformation_mode', 'half_pixel') === 'tf_crop_and_resize' && attrFloat(node, 'extrapolation_value', 0) !== 0) {
    return stop(`Resize writes the constant ${attrFloat(node, 'extrapolation_value', 0)} outside the crop box, which is not positively homogeneous`);
  }
  const d0 = view.dims.get(node.inputs[0])?.[state.axis];
  const d1 = view.dims.get(node.outputs[0])?.[state.axis];
  if (d0 && d1 && d0.coef === d1.coef && d0.syms.join() === d1.syms.join()) return same(state);
  // Output shape unknown (sizes computed at run time): the sizes or scales along the unit axis tell.
  if (node.opType === 'Resize' || node.opType === 'Upsample') {
    const scalesInput = node.opType === 'Upsample' ? 1 : 2;
    const scales = node.inputs[scalesInput] ? view.constantValues(node.inputs[scalesInput]) : undefined;
    if (scales && scales.length === state.rank) return scales[state.axis] === 1 ? same(state) : stop(`${node.opType} scales the unit axis`);
    const sizes = node.opType === 'Resize' && node.inputs[3] ? view.shapeValues(node.inputs[3]) : undefined;
    const s = sizes?.[state.axis];
    if (sizes && sizes.length === state.rank && s && d0 && s.coef === d0.coef && s.syms.join() === d0.syms.join()) return same(state);
  }
  return stop(`${node.opType} may change the unit axis`);
}

/** Mul/Div by a constant keeps each channel's scale (the constant itself is not a weight here). */
function scaleByConstant(p: PassInput): Pass {
  const otherIndex = 1 - p.input;
  const otherValue = p.node.inputs[otherIndex];
  if (!otherValue || !p.view.isConstant(otherValue)) return stop(`${p.node.opType} by a computed value (gating) is not positively homogeneous in the units`);
  if (p.node.opType === 'Div' && p.input === 1) return stop('Div by the units is not positively homogeneous');
  return same(p.state);
}

/**
 * What a node does to a group's units arriving on one of its inputs, or undefined for the nodes
 * the graph builder handles itself (layers, BatchNormalization, Add/Sub) and unknown ones.
 */
export function passThrough(p: PassInput): Pass | undefined {
  const op = p.node.opType;
  const out = (o: number) => p.view.dims.get(p.node.outputs[o]);
  if (p.node.domain !== '' && p.node.domain !== 'ai.onnx') return stop(`is a ${p.node.domain} operator`);
  if (NOT_HOMOGENEOUS.has(op)) {
    return { kind: 'fixed', reason: `feeds ${op} (node '${nodeLabel(p.node)}'), which is not positively homogeneous`, activation: other(op), outputs: [{ output: 0, state: p.state }] };
  }
  switch (op) {
    case 'Relu':
      return { ...same(p.state), activation: relu() };
    case 'LeakyRelu':
      return { ...same(p.state), activation: leakyRelu(attrFloat(p.node, 'alpha', 0.01)) };
    case 'PRelu': {
      if (p.input !== 0) return stop('uses the units as PReLU slopes');
      const a = preluOf(p);
      return a ? { ...same(p.state), activation: a } : stop('PReLU slopes computed at run time');
    }
    case 'ThresholdedRelu':
      return attrFloat(p.node, 'alpha', 1) === 0 ? { ...same(p.state), activation: relu() } : { kind: 'fixed', reason: `feeds ThresholdedRelu (node '${nodeLabel(p.node)}') with a nonzero threshold, which is not positively homogeneous`, activation: other(`ThresholdedRelu(alpha=${attrFloat(p.node, 'alpha', 1)})`), outputs: [{ output: 0, state: p.state }] };
    case 'Abs':
      return { ...same(p.state), activation: { kind: 'bilu', neg: -1, pos: 1, name: 'abs' } };
    case 'Neg':
      return { ...same(p.state), activation: { kind: 'bilu', neg: -1, pos: -1, name: 'neg' } };
    case 'Identity':
    case 'Dropout':
      return same(p.state);
    case 'Shape':
    case 'Size':
      // They read the shape only, which no scaling changes.
      return { kind: 'pass', outputs: [] };
    case 'Cast':
      return [1, 10, 11, 16].includes(attrInt(p.node, 'to', 0)) ? same(p.state) : stop('Cast to a non-float type');
    case 'Clip':
      return p.input === 0 ? clipOf(p) : stop('uses the units as Clip bounds');
    case 'Max':
    case 'Min':
      return maxMinOf(p);
    case 'Mul':
    case 'Div':
      return scaleByConstant(p);
    case 'MaxPool':
      // The indices output (if used) does not scale; the pooled values do.
      return p.state.axis === 1 ? same(p.state) : stop('MaxPool over the unit axis');
    case 'AveragePool':
    case 'LpPool':
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
    case 'GlobalLpPool':
      return p.state.axis === 1 ? same(p.state) : stop(`${op} over the unit axis`);
    case 'Flatten':
      return flattenOf(p, p.view.dims.get(p.node.inputs[0]));
    case 'Reshape':
      return p.input === 0 ? reshapeOf(p, p.view.dims.get(p.node.inputs[0]), out(0)) : stop('uses the units as a shape');
    case 'Transpose':
      return transposeOf(p);
    case 'Squeeze':
      return p.input === 0 ? squeezeOf(p, p.view.dims.get(p.node.inputs[0])) : stop('uses the units as axes');
    case 'Unsqueeze':
      return p.input === 0 ? unsqueezeOf(p) : stop('uses the units as axes');
    case 'Slice':
      return sliceOf(p);
    case 'Gather':
      return gatherOf(p);
    case 'Split': {
      if (p.input !== 0) return stop('uses the units as split sizes');
      const a = normAxis(attrInt(p.node, 'axis', 0), p.state.rank);
      if (a === p.state.axis) return stop('Split along the unit axis');
      return { kind: 'pass', outputs: p.node.outputs.map((_, k) => ({ output: k, state: p.state })) };
    }
    case 'Concat':
      return concatOf(p);
    case 'Pad':
      return padOf(p);
    case 'Resize':
    case 'Upsample':
      return resizeOf(p);
    case 'Expand':
    case 'Tile':
      return p.input === 0 ? resizeOf(p) : stop(`uses the units as ${op} parameters`);
    default:
      if (op.startsWith('Reduce')) return reduceOf(p);
      return undefined;
  }
}

/** f∘g for two BiLUs (g first): still a BiLU; the names say what was composed. */
export function composeActivations(first: Activation | undefined, then: Activation): Activation {
  if (!first) return then;
  if (first.kind !== 'bilu' || then.kind !== 'bilu') return first.kind === 'other' ? first : then;
  if (first.name === 'identity') return then;
  if (then.name === 'identity') return first;
  const at = (neg: number | readonly number[], i: number) => (typeof neg === 'number' ? neg : neg[i]);
  const n = typeof first.neg === 'number' && typeof then.neg === 'number' ? 1 : Math.max(typeof first.neg === 'number' ? 0 : first.neg.length, typeof then.neg === 'number' ? 0 : then.neg.length);
  const negs: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = at(first.neg, i);
    // x < 0: first gives a·x, whose sign is opposite to a's; then applies its slope for that sign.
    negs.push(a > 0 ? a * at(then.neg, i) : a * then.pos);
  }
  const pos = first.pos >= 0 ? first.pos * then.pos : first.pos * at(then.neg, 0);
  const neg = n === 1 && typeof first.neg === 'number' && typeof then.neg === 'number' ? negs[0] : negs;
  const name = first.name === then.name && first.name === 'relu' ? 'relu' : `${first.name ?? 'bilu'}→${then.name ?? 'bilu'}`;
  return { kind: 'bilu', neg, pos, name };
}
