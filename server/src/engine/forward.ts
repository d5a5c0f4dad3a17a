// A reference forward pass over a Network, in float64: what "balancing changes no output"
// is checked against. Supports dense (with flatten), N-d convolutions, biases, and
// recurrent (delayed) edges over a sequence.
import { elementReader } from '../tensor/dtype';
import { stridesOf, tensorValues, type Tensor } from '../tensor/tensor';
import { activate } from './activation';
import { groupIndex, tensorIndex, type BatchNorm, type Connection, type Network, type Pool } from './network';

/** Values of a group at one step: unit-major, unit u at position s is [u·S + s]. */
export type GroupValues = Float64Array;

function spatialSize(shape: readonly number[] | undefined): number {
  return (shape ?? []).reduce((a, b) => a * b, 1);
}

/** Groups in an order where every non-delayed source comes before its target. */
export function evaluationOrder(net: Network): number[] {
  const gi = groupIndex(net);
  const deps = net.groups.map(() => new Set<number>());
  for (const c of net.connections) {
    if (c.from !== undefined && !c.delay) deps[gi.get(c.to)!].add(gi.get(c.from)!);
  }
  const order: number[] = [];
  const state = new Uint8Array(net.groups.length);
  const visit = (g: number, path: number[]) => {
    if (state[g] === 2) return;
    if (state[g] === 1) {
      throw new Error(`network ${net.name}: a cycle without a delayed edge runs through ${[...path, g].map((i) => net.groups[i].name).join(' → ')}`);
    }
    state[g] = 1;
    for (const d of deps[g]) visit(d, [...path, g]);
    state[g] = 2;
    order.push(g);
  };
  net.groups.forEach((_, g) => visit(g, []));
  return order;
}

/**
 * Runs the network over `steps` time steps (1 for feed-forward nets). `inputs` gives, per input
 * group, one array per step. Returns every group's values at every step.
 */
export function forward(net: Network, inputs: Map<string, GroupValues[]>, steps = 1): Map<string, GroupValues[]> {
  const gi = groupIndex(net);
  const tensors = tensorIndex(net);
  const order = evaluationOrder(net);
  const incoming = net.groups.map(() => [] as Connection[]);
  for (const c of net.connections) incoming[gi.get(c.to)!].push(c);
  const values = new Map<string, GroupValues[]>();
  for (const g of net.groups) values.set(g.name, []);
  for (let t = 0; t < steps; t++) {
    for (const g of order) {
      const group = net.groups[g];
      const S = spatialSize(group.pool ? group.pool.inputSpatial : group.spatial);
      if (group.role === 'input') {
        const v = inputs.get(group.name)?.[t];
        if (!v || v.length !== group.size * S) throw new Error(`input ${group.name}: expected ${group.size * S} values at step ${t}`);
        values.get(group.name)!.push(v);
        continue;
      }
      const pre = new Float64Array(group.size * S);
      for (const c of incoming[g]) {
        if (c.kind === 'skip') {
          const src = values.get(c.from!)![t];
          if (src.length !== pre.length) throw new Error(`skip ${c.from} → ${c.to}: sizes differ`);
          for (let i = 0; i < pre.length; i++) pre[i] += src[i];
          continue;
        }
        const tensor = tensors.get(c.tensor ?? '')!;
        const bn = group.batchnorm;
        if (bn && (c.tensor === bn.mean || c.tensor === bn.beta)) continue;
        if (c.kind === 'bias' || c.from === undefined) {
          addBias(pre, c, tensor, group.size, S);
          continue;
        }
        const src = net.groups[gi.get(c.from)!];
        const hist = values.get(c.from)!;
        const srcValues = c.delay ? (t > 0 ? hist[t - 1] : new Float64Array(src.size * spatialSize(src.spatial))) : hist[t];
        if (c.kind === 'conv') addConv(pre, c, tensor, group.size, (group.pool ? group.pool.inputSpatial : group.spatial) ?? [], srcValues, src.size, src.spatial ?? []);
        else addDense(pre, c, tensor, group.size, S, srcValues, src.size, spatialSize(src.spatial));
      }
      if (group.batchnorm) applyBatchNorm(pre, group.batchnorm, tensors, group.size, S);
      if (group.activation) {
        const act = group.activation;
        for (let u = 0; u < group.size; u++) for (let s = 0; s < S; s++) pre[u * S + s] = activate(act, u, pre[u * S + s]);
      }
      values.get(group.name)!.push(group.pool ? pool(pre, group.size, group.pool, group.spatial ?? []) : pre);
    }
  }
  return values;
}

/** Max or average pooling of each unit's map, windows clipped at the edges (no padding). */
function pool(values: Float64Array, size: number, p: Pool, outSpatial: readonly number[]): Float64Array {
  const inS = p.inputSpatial;
  const stride = p.stride ?? p.kernel;
  const nd = inS.length;
  const outN = spatialSize(outSpatial);
  const inN = spatialSize(inS);
  const kN = spatialSize(p.kernel);
  const inStr = stridesOf(inS);
  const outStr = stridesOf(outSpatial);
  const kStr = stridesOf(p.kernel);
  const out = new Float64Array(size * outN);
  for (let u = 0; u < size; u++) {
    for (let q = 0; q < outN; q++) {
      let acc = p.kind === 'max' ? -Infinity : 0;
      let count = 0;
      for (let k = 0; k < kN; k++) {
        let idx = 0;
        let inside = true;
        for (let d = 0; d < nd; d++) {
          const pos = (Math.floor(q / outStr[d]) % outSpatial[d]) * stride[d] + (Math.floor(k / kStr[d]) % p.kernel[d]);
          if (pos >= inS[d]) inside = false;
          idx += pos * inStr[d];
        }
        if (!inside) continue;
        const v = values[u * inN + idx];
        acc = p.kind === 'max' ? Math.max(acc, v) : acc + v;
        count++;
      }
      out[u * outN + q] = p.kind === 'max' ? acc : acc / count;
    }
  }
  return out;
}

function addBias(pre: Float64Array, c: Connection, tensor: Tensor, size: number, S: number): void {
  const read = elementReader(tensor.dtype, tensor.data);
  const strides = stridesOf(tensor.shape);
  let base = 0;
  for (const s of c.select ?? []) base += s.index * strides[s.axis];
  const start = c.target.start ?? 0;
  const length = c.target.length ?? tensor.shape[c.target.axis] - start;
  const inner = c.target.inner ?? 1;
  for (let a = 0; a < length; a++) {
    const u = Math.floor(a / inner) % size;
    const v = read(base + (start + a) * strides[c.target.axis]);
    for (let s = 0; s < S; s++) pre[u * S + s] += v;
  }
}

function addDense(pre: Float64Array, c: Connection, tensor: Tensor, tSize: number, tS: number, src: Float64Array, sSize: number, sS: number): void {
  const read = elementReader(tensor.dtype, tensor.data);
  const strides = stridesOf(tensor.shape);
  let base = 0;
  for (const s of c.select ?? []) base += s.index * strides[s.axis];
  const tStart = c.target.start ?? 0;
  const tLen = c.target.length ?? tensor.shape[c.target.axis] - tStart;
  const sMap = c.source!;
  const sStart = sMap.start ?? 0;
  const sLen = sMap.length ?? tensor.shape[sMap.axis] - sStart;
  const inner = sMap.inner ?? 1;
  const sa = strides[c.target.axis];
  const sb = strides[sMap.axis];
  // A source axis as long as the group is read per position (token-wise dense); a longer one
  // is a flatten of units × positions.
  const perPosition = sLen === sSize && inner === 1;
  if (perPosition && tS !== sS) throw new Error(`connection ${c.name ?? c.tensor}: per-position dense needs equal spatial sizes`);
  for (let a = 0; a < tLen; a++) {
    const tu = a % tSize;
    for (let b = 0; b < sLen; b++) {
      const w = read(base + (tStart + a) * sa + (sStart + b) * sb);
      if (perPosition) {
        for (let s = 0; s < tS; s++) pre[tu * tS + s] += w * src[b * sS + s];
      } else {
        const u = Math.floor(b / inner) % sSize;
        const pos = inner > 1 ? b % inner : Math.floor(b / sSize);
        pre[tu * tS] += w * src[u * sS + pos];
      }
    }
  }
}

function addConv(pre: Float64Array, c: Connection, tensor: Tensor, tSize: number, tSpatial: readonly number[], src: Float64Array, sSize: number, sSpatial: readonly number[]): void {
  const read = elementReader(tensor.dtype, tensor.data);
  const strides = stridesOf(tensor.shape);
  const tAxis = c.target.axis;
  const sAxis = c.source!.axis;
  const used = new Set([tAxis, sAxis, ...(c.select ?? []).map((s) => s.axis)]);
  const kAxes = c.kernelAxes ? [...c.kernelAxes] : tensor.shape.map((_, i) => i).filter((i) => !used.has(i));
  const nd = kAxes.length;
  if (tSpatial.length !== nd || sSpatial.length !== nd) throw new Error(`connection ${c.name ?? c.tensor}: a ${nd}-d kernel needs ${nd}-d feature maps`);
  let base = 0;
  for (const s of c.select ?? []) base += s.index * strides[s.axis];
  const G = c.groups ?? 1;
  const cinG = tensor.shape[sAxis];
  const coutG = tSize / G;
  const geo = c.geometry ?? {};
  const stride = geo.stride ?? kAxes.map(() => 1);
  const pad = geo.pad ?? kAxes.map(() => 0);
  const dil = geo.dilation ?? kAxes.map(() => 1);
  const kDims = kAxes.map((a) => tensor.shape[a]);
  const tS = spatialSize(tSpatial);
  const sS = spatialSize(sSpatial);
  const kN = spatialSize(kDims);
  const tStr = stridesOf(tSpatial);
  const sStr = stridesOf(sSpatial);
  const kStr = stridesOf(kDims);
  const pos = new Array<number>(nd);
  // A conv may read a part of its input channels (one input of a concatenation).
  const sStart = c.source!.start ?? 0;
  const sLen = c.source!.length ?? cinG - sStart;
  for (let o = 0; o < tSize; o++) {
    const g = Math.floor(o / coutG);
    for (let i = sStart; i < sStart + sLen; i++) {
      const si = G > 1 ? g * cinG + i : i - sStart;
      if (si >= sSize) throw new Error(`connection ${c.name ?? c.tensor}: input channel ${si} out of range`);
      for (let k = 0; k < kN; k++) {
        let off = base + o * strides[tAxis] + i * strides[sAxis];
        for (let d = 0; d < nd; d++) off += (Math.floor(k / kStr[d]) % kDims[d]) * strides[kAxes[d]];
        const w = read(off);
        if (w === 0) continue;
        for (let q = 0; q < tS; q++) {
          let sIdx = 0;
          let inside = true;
          for (let d = 0; d < nd; d++) {
            const od = Math.floor(q / tStr[d]) % tSpatial[d];
            const kd = Math.floor(k / kStr[d]) % kDims[d];
            pos[d] = od * stride[d] - pad[d] + kd * dil[d];
            if (pos[d] < 0 || pos[d] >= sSpatial[d]) {
              inside = false;
              break;
            }
            sIdx += pos[d] * sStr[d];
          }
          if (inside) pre[o * tS + q] += w * src[si * sS + sIdx];
        }
      }
    }
  }
}

function applyBatchNorm(pre: Float64Array, bn: BatchNorm, tensors: Map<string, Tensor>, size: number, S: number): void {
  const get = (name: string | undefined, fallback: number): Float64Array => {
    if (name === undefined) return new Float64Array(size).fill(fallback);
    const t = tensors.get(name);
    if (!t) throw new Error(`batchnorm: no tensor named "${name}"`);
    return tensorValues(t);
  };
  const mean = get(bn.mean, 0);
  const variance = get(bn.variance, 1);
  const gamma = get(bn.gamma, 1);
  const beta = get(bn.beta, 0);
  for (let u = 0; u < size; u++) {
    const k = gamma[u] / Math.sqrt(variance[u] + bn.eps);
    for (let s = 0; s < S; s++) pre[u * S + s] = k * (pre[u * S + s] - mean[u]) + beta[u];
  }
}
