// Turns a Network into the solver's form: scale variables (one per balanceable unit, or per
// tie), and cost blocks — one per connection (per group for grouped convs) — that know which
// variable each row and column belongs to.
import { elementReader } from '../tensor/dtype';
import { stridesOf, type Tensor } from '../tensor/tensor';
import { homogeneityDegree } from './activation';
import { groupIndex, tensorIndex, type AxisMap, type Connection, type Network, type Tie } from './network';
import type { Regularizer } from './regularizer';
import { buildCostStorage, costProducts, type CostStorage } from './costStorage';
import { costAt, primeOnes } from './evaluate';
import type { ComputeBackend, ProductJob } from './computeBackend';

export type UnitStatus = 'balanceable' | 'visible' | 'fixed' | 'dead';

export interface UnitInfo {
  status: UnitStatus;
  /** Why a hidden unit is not balanceable. */
  reason?: string;
}

/** Element addressing of one connection (or one group of a grouped conv) inside its tensor. */
export interface BlockLayout {
  tensor: Tensor;
  base: number;
  nT: number;
  nS: number;
  /** Element strides for the target and source index (source stride 0 for a bias). */
  sa: number;
  sb: number;
  /** Offsets of the summed (kernel) taps relative to (a, b). */
  taps: Int32Array;
}

export interface Block {
  connection: number;
  layout: BlockLayout;
  regularized: boolean;
  /** Global unit id of each row (target) and column (source); -1 for the constant unit. */
  tUnit: Int32Array;
  sUnit: Int32Array;
  /** Scale variable of each row and column; -1 where the unit is fixed. */
  tVar: Int32Array;
  sVar: Int32Array;
  /** Homogeneity degree of each column's unit (1 for fixed units). */
  sDeg: Float64Array;
  /** (row, col) pairs whose two ends share one variable: invariant under scaling. */
  selfPairs: Int32Array;
  /** (row, col) pairs whose two ends are the same unit (recurrent self-loops). */
  unitSelfPairs: Int32Array;
  srcFixed: boolean;
  tgtFixed: boolean;
  /** Σ_taps |w|^p as a dense matrix or a view of the weights (single power only). */
  cost?: CostStorage;
  /** |w| per element, taps innermost (sums of powers, whose costs do not factor). */
  absw?: Float64Array;
}

export interface Problem {
  network: Network;
  regularizer: Regularizer;
  groupOffset: number[];
  nUnits: number;
  units: UnitInfo[];
  unitGroup: Int32Array;
  unitVar: Int32Array;
  nVars: number;
  /** Homogeneity degree per variable. */
  degree: Float64Array;
  /** Group of each variable (its first unit's group). */
  varGroup: Int32Array;
  /** Variables whose units are in each group (ordered by unit). */
  groupVars: Int32Array[];
  /** Regularized blocks: the ones that carry cost. */
  blocks: Block[];
  /** Every block, regularized or not: the ones a scaling rewrites. */
  scaled: Block[];
  /**
   * Where the products (single power only) and the final scaling run (compute/select.ts,
   * attachCompute); the engine's one-thread inProcessBackend when unset.
   */
  compute?: ComputeBackend;
}

function axisRange(map: AxisMap, tensor: Tensor, what: string): { start: number; length: number; inner: number } {
  const dim = tensor.shape[map.axis];
  if (dim === undefined) throw new Error(`tensor ${tensor.name}: ${what} axis ${map.axis} is out of range for shape [${tensor.shape.join(', ')}]`);
  const start = map.start ?? 0;
  const length = map.length ?? dim - start;
  const inner = map.inner ?? 1;
  if (start < 0 || length < 0 || start + length > dim || inner < 1) {
    throw new Error(`tensor ${tensor.name}: ${what} range [${start}, ${start + length}) does not fit axis ${map.axis} of length ${dim}`);
  }
  return { start, length, inner };
}

function tapOffsets(shape: readonly number[], strides: number[], axes: number[]): Int32Array {
  let offs = [0];
  for (const ax of axes) {
    const next: number[] = [];
    for (const o of offs) for (let k = 0; k < shape[ax]; k++) next.push(o + k * strides[ax]);
    offs = next;
  }
  return Int32Array.from(offs);
}

interface RawBlock {
  connection: number;
  layout: BlockLayout;
  tUnit: Int32Array;
  sUnit: Int32Array;
  regularized: boolean;
}

function blocksOfConnection(net: Network, ci: number, c: Connection, groups: Map<string, number>, tensors: Map<string, Tensor>, groupOffset: number[]): RawBlock[] {
  const label = c.name ?? c.tensor ?? `${c.from} → ${c.to}`;
  const tensor = c.tensor === undefined ? undefined : tensors.get(c.tensor);
  if (!tensor) throw new Error(`connection ${label}: no tensor named "${c.tensor ?? ''}"`);
  const tg = groups.get(c.to);
  if (tg === undefined) throw new Error(`connection ${label}: no group named "${c.to}"`);
  const strides = stridesOf(tensor.shape);
  const used = new Set<number>([c.target.axis]);
  let base = 0;
  for (const s of c.select ?? []) {
    if (s.index < 0 || s.index >= (tensor.shape[s.axis] ?? 0)) throw new Error(`connection ${label}: selected index ${s.index} is out of range on axis ${s.axis}`);
    base += s.index * strides[s.axis];
    used.add(s.axis);
  }
  const tr = axisRange(c.target, tensor, 'target');
  const tSize = net.groups[tg].size;
  const unitOf = (r: { start: number; inner: number }, size: number, off: number, i: number) => off + (Math.floor(i / r.inner) % size);
  if (c.kind === 'bias' || c.from === undefined) {
    const taps = tapOffsets(tensor.shape, strides, tensor.shape.map((_, i) => i).filter((i) => !used.has(i)));
    const tUnit = new Int32Array(tr.length);
    for (let a = 0; a < tr.length; a++) tUnit[a] = unitOf(tr, tSize, groupOffset[tg], a);
    return [{
      connection: ci,
      layout: { tensor, base: base + tr.start * strides[c.target.axis], nT: tr.length, nS: 1, sa: strides[c.target.axis], sb: 0, taps },
      tUnit,
      sUnit: Int32Array.of(-1),
      regularized: c.regularized ?? true,
    }];
  }
  const sg = groups.get(c.from);
  if (sg === undefined) throw new Error(`connection ${label}: no group named "${c.from}"`);
  if (!c.source) throw new Error(`connection ${label}: a ${c.kind} connection needs a source axis`);
  if (c.source.axis === c.target.axis) throw new Error(`connection ${label}: source and target use the same axis`);
  used.add(c.source.axis);
  const sr = axisRange(c.source, tensor, 'source');
  const sSize = net.groups[sg].size;
  const tapAxes = c.kernelAxes ? [...c.kernelAxes] : tensor.shape.map((_, i) => i).filter((i) => !used.has(i));
  const taps = tapOffsets(tensor.shape, strides, tapAxes);
  const G = c.groups ?? 1;
  if (G < 1 || tr.length % G !== 0) throw new Error(`connection ${label}: ${tr.length} output channels cannot form ${G} groups`);
  const nTg = tr.length / G;
  const sa = strides[c.target.axis];
  const sb = strides[c.source.axis];
  const out: RawBlock[] = [];
  for (let g = 0; g < G; g++) {
    const tUnit = new Int32Array(nTg);
    for (let a = 0; a < nTg; a++) tUnit[a] = unitOf(tr, tSize, groupOffset[tg], g * nTg + a);
    const sUnit = new Int32Array(sr.length);
    // In a grouped conv the tensor's source axis holds the channels of one group only.
    const sOff = G > 1 ? g * sr.length : 0;
    for (let b = 0; b < sr.length; b++) sUnit[b] = unitOf(sr, sSize, groupOffset[sg], sOff + b);
    out.push({
      connection: ci,
      layout: { tensor, base: base + (tr.start + g * nTg) * sa + sr.start * sb, nT: nTg, nS: sr.length, sa, sb, taps },
      tUnit,
      sUnit,
      regularized: c.regularized ?? true,
    });
  }
  return out;
}

/** Union-find over units for ties. */
function tieRoots(net: Network, groups: Map<string, number>, groupOffset: number[], nUnits: number): Int32Array {
  const parent = new Int32Array(nUnits);
  for (let i = 0; i < nUnits; i++) parent[i] = i;
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  const skipTies: Tie[] = net.connections
    .filter((c) => c.kind === 'skip')
    .map((c) => ({ groups: [c.from ?? '', c.to], reason: `residual add ${c.from} → ${c.to}` }));
  for (const tie of [...(net.ties ?? []), ...skipTies]) {
    const gs = tie.groups.map((name) => {
      const g = groups.get(name);
      if (g === undefined) throw new Error(`tie (${tie.reason}): no group named "${name}"`);
      return g;
    });
    const size = net.groups[gs[0]].size;
    for (const g of gs) {
      if (net.groups[g].size !== size) throw new Error(`tie (${tie.reason}): groups ${tie.groups.join(', ')} differ in size`);
    }
    for (let u = 0; u < size; u++) {
      for (const g of gs.slice(1)) {
        const a = find(groupOffset[gs[0]] + u);
        const b = find(groupOffset[g] + u);
        if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
      }
    }
  }
  for (let i = 0; i < nUnits; i++) parent[i] = find(i);
  return parent;
}

/**
 * `compute`: the backend that will run this problem's products (its cost blocks are loaded
 * there now, and the row and column sums at Λ = 1 computed there) and its final scaling; the
 * engine's one-thread inProcessBackend when absent. Products of sums of powers always stay
 * in this process (only the scaling goes to `compute`).
 */
export function compile(net: Network, regularizer: Regularizer, compute?: ComputeBackend): Problem {
  const groups = groupIndex(net);
  const tensors = tensorIndex(net);
  const groupOffset: number[] = [];
  let nUnits = 0;
  for (const g of net.groups) {
    if (!(g.size > 0) || !Number.isInteger(g.size)) throw new Error(`group ${g.name}: size must be a positive integer`);
    groupOffset.push(nUnits);
    nUnits += g.size;
  }
  const unitGroup = new Int32Array(nUnits);
  net.groups.forEach((g, gi) => unitGroup.fill(gi, groupOffset[gi], groupOffset[gi] + g.size));

  // Status from roles and activations.
  const units: UnitInfo[] = new Array(nUnits);
  const unitDegree = new Float64Array(nUnits).fill(1);
  net.groups.forEach((g, gi) => {
    const off = groupOffset[gi];
    for (let u = 0; u < g.size; u++) {
      if (g.role !== 'hidden') {
        units[off + u] = { status: 'visible', reason: `${g.role} unit` };
        continue;
      }
      if (!g.activation) {
        units[off + u] = { status: 'fixed', reason: 'activation unknown' };
        continue;
      }
      const c = homogeneityDegree(g.activation);
      if (c === undefined) {
        units[off + u] = { status: 'fixed', reason: `activation ${g.activation.kind === 'other' ? g.activation.name : g.activation.kind} is not positively homogeneous` };
        continue;
      }
      unitDegree[off + u] = c;
      units[off + u] = { status: 'balanceable' };
    }
    for (const v of g.visible ?? []) {
      for (const u of v.units ?? Array.from({ length: g.size }, (_, i) => i)) {
        if (u < 0 || u >= g.size) throw new Error(`group ${g.name}: visible unit ${u} is out of range`);
        if (units[off + u].status === 'balanceable') units[off + u] = { status: 'fixed', reason: v.reason };
      }
    }
  });

  // Ties: one variable per tie class; a class with any non-balanceable member is fixed.
  const root = tieRoots(net, groups, groupOffset, nUnits);
  for (let i = 0; i < nUnits; i++) {
    const r = root[i];
    if (r === i) continue;
    const a = units[r];
    const b = units[i];
    if (unitDegree[r] !== unitDegree[i] && a.status === 'balanceable' && b.status === 'balanceable') {
      units[r] = { status: 'fixed', reason: 'tied to a unit of another homogeneity degree' };
    }
  }
  for (let i = 0; i < nUnits; i++) {
    const r = root[i];
    if (r !== i && units[i].status !== 'balanceable' && units[r].status === 'balanceable') {
      units[r] = { status: 'fixed', reason: `tied to ${describeUnit(net, unitGroup, groupOffset, i)}, which is ${units[i].status}` };
    }
  }
  for (let i = 0; i < nUnits; i++) {
    const r = root[i];
    if (r !== i && units[r].status !== 'balanceable' && units[i].status === 'balanceable') {
      units[i] = { status: 'fixed', reason: units[r].reason ?? 'tied to a fixed unit' };
    }
  }

  const raw: RawBlock[] = [];
  net.connections.forEach((c, ci) => {
    if (c.kind !== 'skip') raw.push(...blocksOfConnection(net, ci, c, groups, tensors, groupOffset));
  });

  // Costs of every block, and in the same pass their row and column sums at Λ = 1: the dead
  // units come from those, and later passes reuse them for sides that never scale.
  const storage = raw.map((rb) =>
    !rb.regularized ? {} : regularizer.power !== undefined ? { cost: buildCostStorage(rb.layout, regularizer.power) } : { absw: absoluteWeights(rb.layout) },
  );
  const ones = onesSumsAll(raw.map((rb) => rb.layout), storage, regularizer.power !== undefined ? compute : undefined);

  // Dead units: all incoming or all outgoing weights zero (per tie class, its inner edges aside).
  const inSum = new Float64Array(nUnits);
  const outSum = new Float64Array(nUnits);
  raw.forEach((rb, i) => {
    const s = ones[i];
    if (!s) return;
    rb.tUnit.forEach((u, a) => (inSum[root[u]] += s.row[a]));
    rb.sUnit.forEach((u, b) => u >= 0 && (outSum[root[u]] += s.col[b]));
    const inner = sharedEnds(Int32Array.from(rb.tUnit, (u) => root[u]), Int32Array.from(rb.sUnit, (u) => (u >= 0 ? root[u] : -1)));
    for (let k = 0; k < inner.length; k += 2) {
      const a = inner[k];
      const b = inner[k + 1];
      const v = s.at(a, b);
      inSum[root[rb.tUnit[a]]] -= v;
      outSum[root[rb.tUnit[a]]] -= v;
    }
  });
  for (let i = 0; i < nUnits; i++) {
    const r = root[i];
    if (units[i].status !== 'balanceable') continue;
    if (!(inSum[r] > 0) || !(outSum[r] > 0)) {
      units[i] = { status: 'dead', reason: !(inSum[r] > 0) ? 'all incoming weights are zero' : 'all outgoing weights are zero' };
    }
  }
  for (let i = 0; i < nUnits; i++) {
    if (units[i].status === 'dead' && root[i] !== i && units[root[i]].status === 'balanceable') units[root[i]] = units[i];
  }

  const unitVar = new Int32Array(nUnits).fill(-1);
  const degree: number[] = [];
  const varGroup: number[] = [];
  for (let i = 0; i < nUnits; i++) {
    if (units[i].status !== 'balanceable') continue;
    const r = root[i];
    if (units[r].status !== 'balanceable') {
      units[i] = { ...units[r] };
      continue;
    }
    if (unitVar[r] < 0) {
      unitVar[r] = degree.length;
      degree.push(unitDegree[r]);
      varGroup.push(unitGroup[r]);
    }
    unitVar[i] = unitVar[r];
  }
  const nVars = degree.length;
  const groupVarLists: number[][] = net.groups.map(() => []);
  const seen = new Uint8Array(nVars);
  for (let i = 0; i < nUnits; i++) {
    const v = unitVar[i];
    if (v >= 0 && !seen[v]) {
      seen[v] = 1;
      groupVarLists[varGroup[v]].push(v);
    }
  }

  const blocks: Block[] = raw.map((rb, i) => {
    const tVar = rb.tUnit.map((u) => (u >= 0 ? unitVar[u] : -1));
    const sVar = rb.sUnit.map((u) => (u >= 0 ? unitVar[u] : -1));
    const sDeg = Float64Array.from(sVar, (v) => (v >= 0 ? degree[v] : 1));
    const block: Block = {
      connection: rb.connection,
      layout: rb.layout,
      regularized: rb.regularized,
      tUnit: rb.tUnit,
      sUnit: rb.sUnit,
      tVar,
      sVar,
      sDeg,
      selfPairs: sharedEnds(tVar, sVar),
      unitSelfPairs: sharedEnds(rb.tUnit, rb.sUnit),
      srcFixed: sVar.every((v) => v < 0),
      tgtFixed: tVar.every((v) => v < 0),
    };
    Object.assign(block, storage[i]);
    if (block.cost && ones[i]) primeOnes(block, ones[i]!.row, ones[i]!.col);
    return block;
  });

  return {
    network: net,
    regularizer,
    groupOffset,
    nUnits,
    units,
    unitGroup,
    unitVar,
    nVars,
    degree: Float64Array.from(degree),
    varGroup: Int32Array.from(varGroup),
    groupVars: groupVarLists.map((l) => Int32Array.from(l)),
    blocks: blocks.filter((b) => b.regularized),
    scaled: blocks,
    compute,
  };
}

/** (row, col) pairs whose row and column carry the same non-negative id. */
function sharedEnds(rows: Int32Array, cols: Int32Array): Int32Array {
  const byId = new Map<number, number[]>();
  cols.forEach((id, b) => {
    if (id < 0) return;
    const l = byId.get(id);
    if (l) l.push(b);
    else byId.set(id, [b]);
  });
  const pairs: number[] = [];
  rows.forEach((id, a) => {
    for (const b of id >= 0 ? byId.get(id) ?? [] : []) pairs.push(a, b);
  });
  return Int32Array.from(pairs);
}

function absoluteWeights(layout: BlockLayout): Float64Array {
  const { tensor, base, nT, nS, sa, sb, taps } = layout;
  const read = elementReader(tensor.dtype, tensor.data);
  const K = taps.length;
  const out = new Float64Array(nT * nS * K);
  for (let a = 0; a < nT; a++) {
    for (let b = 0; b < nS; b++) {
      const off = base + a * sa + b * sb;
      for (let k = 0; k < K; k++) out[(a * nS + b) * K + k] = Math.abs(read(off + taps[k]));
    }
  }
  return out;
}

type Sums = { row: Float64Array; col: Float64Array; at: (a: number, b: number) => number };

/**
 * onesSums for every block; the cost blocks' products all in one call on `compute` (which loads
 * them first), so that a device backend sees each weight once here and keeps it.
 */
function onesSumsAll(layouts: BlockLayout[], storage: { cost?: CostStorage; absw?: Float64Array }[], compute: ComputeBackend | undefined): (Sums | undefined)[] {
  if (!compute) return layouts.map((l, i) => onesSums(l, storage[i]));
  const costs = storage.flatMap((s) => (s.cost ? [s.cost] : []));
  compute.load(costs);
  const jobs: ProductJob[] = [];
  const out = layouts.map((l, i) => {
    const cost = storage[i].cost;
    if (!cost) return onesSums(l, storage[i]);
    const row = new Float64Array(l.nT);
    const col = new Float64Array(l.nS);
    jobs.push({ cost, x: new Float64Array(l.nS).fill(1), y: new Float64Array(l.nT).fill(1), row, col });
    return { row, col, at: (a: number, b: number) => costAt(cost, a, b) };
  });
  if (jobs.length > 0) compute.products(jobs);
  return out;
}

/** Row and column sums of a block's costs (|w| for sums of powers: only zero matters there). */
function onesSums(layout: BlockLayout, s: { cost?: CostStorage; absw?: Float64Array }): Sums | undefined {
  const { nT, nS } = layout;
  if (s.cost) {
    const row = new Float64Array(nT);
    const col = new Float64Array(nS);
    costProducts(s.cost, new Float64Array(nS).fill(1), new Float64Array(nT).fill(1), row, col);
    const cost = s.cost;
    return { row, col, at: (a, b) => costAt(cost, a, b) };
  }
  if (s.absw) {
    const K = layout.taps.length;
    const w = s.absw;
    const row = new Float64Array(nT);
    const col = new Float64Array(nS);
    const at = (a: number, b: number) => {
      let v = 0;
      for (let k = 0; k < K; k++) v += w[(a * nS + b) * K + k];
      return v;
    };
    for (let a = 0; a < nT; a++) {
      for (let b = 0; b < nS; b++) {
        const v = at(a, b);
        row[a] += v;
        col[b] += v;
      }
    }
    return { row, col, at };
  }
  return undefined;
}

export function describeUnit(net: Network, unitGroup: Int32Array, groupOffset: number[], unit: number): string {
  const g = unitGroup[unit];
  return `${net.groups[g].name}#${unit - groupOffset[g]}`;
}
