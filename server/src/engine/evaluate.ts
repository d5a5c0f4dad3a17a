// The state of a problem at given log-scales x (x_v = log Λ_v): per-variable costs, the
// balance quantities IN/OUT, the regularizer R, and the Hessian of R for Newton steps.
import { costProducts, type CostStorage } from './costStorage';
import type { Block, Problem } from './compile';
import { inProcessBackend, type ComputeBackend, type ProductJob } from './computeBackend';
import { cost as gCost, curvature, flux, gradientScale } from './regularizer';

export interface VarStats {
  /** Balance quantities (Σ_in and Σ_out of |w|^p for Lp; of |w|·g'(|w|) otherwise), self pairs excluded. */
  inFlux: Float64Array;
  outFlux: Float64Array;
  /** Flux of edges whose two ends share the variable (invariant unless the degree is not 1). */
  selfFlux: Float64Array;
  /** Regularizer cost of the incoming and outgoing weights (equal to the fluxes for Lp). */
  inCost: Float64Array;
  outCost: Float64Array;
  /** R(W) over all regularized weights. */
  R: number;
}

/** Per-block buffers, allocated once per problem. */
interface BlockWork {
  x: Float64Array;
  y: Float64Array;
  row: Float64Array;
  col: Float64Array;
  /** Row sums C·1 and column sums 1ᵀC, used where one side is fixed. */
  rowOnes?: Float64Array;
  colOnes?: Float64Array;
}

const workspaces = new WeakMap<Block, BlockWork>();

export function blockWork(block: Block): BlockWork {
  let w = workspaces.get(block);
  if (!w) {
    const { nT, nS } = block.layout;
    w = { x: new Float64Array(nS), y: new Float64Array(nT), row: new Float64Array(nT), col: new Float64Array(nS) };
    workspaces.set(block, w);
  }
  return w;
}

export function rowOnes(block: Block): Float64Array {
  const w = blockWork(block);
  if (!w.rowOnes) {
    w.rowOnes = new Float64Array(block.layout.nT);
    costProducts(block.cost!, new Float64Array(block.layout.nS).fill(1), null, w.rowOnes, w.col);
  }
  return w.rowOnes;
}

export function colOnes(block: Block): Float64Array {
  const w = blockWork(block);
  if (!w.colOnes) {
    w.colOnes = new Float64Array(block.layout.nS);
    costProducts(block.cost!, null, new Float64Array(block.layout.nT).fill(1), w.row, w.colOnes);
  }
  return w.colOnes;
}

/** Installs row and column sums at Λ = 1 computed while compiling (no second pass for them). */
export function primeOnes(block: Block, row: Float64Array, col: Float64Array): void {
  const w = blockWork(block);
  w.rowOnes = row;
  w.colOnes = col;
}

export function costAt(c: CostStorage, a: number, b: number): number {
  if (c.kind === 'matrix') return c.data[a * c.nS + b];
  const w = c.data[c.base + a * c.sa + b * c.sb];
  return c.p === 2 ? w * w : Math.abs(w);
}

/** exp(p·x_v) per variable: the factor on the cost of an edge into v (Lp). */
export function alphaOf(problem: Problem, x: Float64Array): Float64Array {
  const p = problem.regularizer.power ?? 1;
  return x.map((xv) => Math.exp(p * xv));
}

/** exp(-p·c_v·x_v) per variable: the factor on the cost of an edge out of v (Lp). */
export function betaOf(problem: Problem, x: Float64Array): Float64Array {
  const p = problem.regularizer.power ?? 1;
  return x.map((xv, v) => Math.exp(-p * problem.degree[v] * xv));
}

/** Fills the block's target-local y with α (1 for fixed rows) and source-local x with β. */
export function gatherScales(block: Block, alpha: Float64Array, beta: Float64Array, w: BlockWork): void {
  const { tVar, sVar } = block;
  for (let a = 0; a < tVar.length; a++) w.y[a] = tVar[a] >= 0 ? alpha[tVar[a]] : 1;
  for (let b = 0; b < sVar.length; b++) w.x[b] = sVar[b] >= 0 ? beta[sVar[b]] : 1;
}

/** The backend that runs a problem's products (this thread's kernels unless one was given). */
export function computeOf(problem: Problem): ComputeBackend {
  return problem.compute ?? inProcessBackend;
}

export interface ProductRequest {
  block: Block;
  w: BlockWork;
  wantRow: boolean;
  wantCol: boolean;
}

/**
 * One pass over each requested block, all blocks in one backend call (one round trip to a
 * device): row[a] = Σ_b C_ab β_b and col[b] = Σ_a C_ab α_a, each only when wanted (null
 * otherwise). Products against a fixed side (all ones) come from cached sums.
 */
export function blockProducts(problem: Problem, reqs: readonly ProductRequest[]): { row: Float64Array | null; col: Float64Array | null }[] {
  const jobs: ProductJob[] = [];
  const out = reqs.map(({ block, w, wantRow, wantCol }) => {
    const needRow = wantRow && !block.srcFixed;
    const needCol = wantCol && !block.tgtFixed;
    if (needRow || needCol) jobs.push({ cost: block.cost!, x: needRow ? w.x : null, y: needCol ? w.y : null, row: w.row, col: w.col });
    return {
      row: wantRow ? (needRow ? w.row : rowOnes(block)) : null,
      col: wantCol ? (needCol ? w.col : colOnes(block)) : null,
    };
  });
  if (jobs.length > 0) computeOf(problem).products(jobs);
  return out;
}

/** Per-block results of a stats pass that later steps reuse without another pass. */
export interface BlockPass {
  /** row = C·β and col = Cᵀ·α at the pass's x (zeros for a side with no variable). */
  row: Float64Array;
  col: Float64Array;
  /** The parts of row and col over variable columns and variable rows only. */
  rowVar: Float64Array;
  colVar: Float64Array;
  alphaRows: Float64Array;
  betaCols: Float64Array;
  /**
   * Block cost split by whether the row and the column belong to a variable:
   * [var→var, fixed→var (column fixed), var→fixed (row fixed), fixed→fixed].
   */
  totals: [number, number, number, number];
}

export interface StatsOptions {
  /** Keep per-block products and split totals (single-power regularizers only). */
  keep?: boolean;
}

/** Sums per scale variable (what solvers need), or per unit (what listings show). */
type Level = 'var' | 'unit';

export function varStats(problem: Problem, x: Float64Array, opts: StatsOptions = {}): VarStats & { blocks?: BlockPass[] } {
  return problem.regularizer.power !== undefined ? powerStats(problem, x, opts.keep ?? false, 'var') : generalStats(problem, x, 'var');
}

/** The same quantities per unit (every unit, balanceable or not; self-loops excluded). */
export function unitStats(problem: Problem, x: Float64Array): VarStats {
  return problem.regularizer.power !== undefined ? powerStats(problem, x, false, 'unit') : generalStats(problem, x, 'unit');
}

function ends(block: Block, level: Level): { t: Int32Array; s: Int32Array; pairs: Int32Array } {
  return level === 'var'
    ? { t: block.tVar, s: block.sVar, pairs: block.selfPairs }
    : { t: block.tUnit, s: block.sUnit, pairs: block.unitSelfPairs };
}

function emptyStats(n: number, shared: boolean): VarStats {
  const inFlux = new Float64Array(n);
  const outFlux = new Float64Array(n);
  return {
    inFlux,
    outFlux,
    selfFlux: new Float64Array(n),
    inCost: shared ? inFlux : new Float64Array(n),
    outCost: shared ? outFlux : new Float64Array(n),
    R: 0,
  };
}

function powerStats(problem: Problem, x: Float64Array, keep: boolean, level: Level): VarStats & { blocks?: BlockPass[] } {
  const st: VarStats & { blocks?: BlockPass[] } = emptyStats(level === 'var' ? problem.nVars : problem.nUnits, true);
  const alpha = alphaOf(problem, x);
  const beta = betaOf(problem, x);
  // At the identity every product is a cached row or column sum: no pass over the weights.
  const identity = x.every((v) => v === 0);
  const perUnit = level === 'unit';
  // Every block's scales first, then all products in one backend call, then the sums.
  const works = problem.blocks.map((block) => {
    const w = blockWork(block);
    gatherScales(block, alpha, beta, w);
    return w;
  });
  // Per variable, a side without variables needs no product: its sums feed only R, which
  // the other side's product (or a cached sum) gives as well.
  const products = identity
    ? problem.blocks.map((block) => ({ row: rowOnes(block), col: colOnes(block) }))
    : blockProducts(problem, problem.blocks.map((block, i) => ({ block, w: works[i], wantRow: perUnit || !block.tgtFixed, wantCol: perUnit || !block.srcFixed })));
  const kept: (BlockPass | (() => BlockPass))[] = [];
  const mixedJobs: ProductJob[] = [];
  problem.blocks.forEach((block, i) => {
    const w = works[i];
    const { t: tIdx, s: sIdx, pairs: sp } = ends(block, level);
    let { row, col } = products[i];
    if (!row && !col) row = rowOnes(block);
    if (row) {
      for (let a = 0; a < tIdx.length; a++) {
        const v = w.y[a] * row[a];
        st.R += v;
        if (tIdx[a] >= 0) st.inFlux[tIdx[a]] += v;
      }
    } else {
      for (let b = 0; b < sIdx.length; b++) st.R += w.x[b] * col![b];
    }
    if (col) {
      for (let b = 0; b < sIdx.length; b++) {
        if (sIdx[b] >= 0) st.outFlux[sIdx[b]] += w.x[b] * col[b];
      }
    }
    for (let i = 0; i < sp.length; i += 2) {
      const a = sp[i];
      const b = sp[i + 1];
      const v = costAt(block.cost!, a, b) * w.y[a] * w.x[b];
      const k = tIdx[a];
      st.inFlux[k] -= v;
      st.outFlux[k] -= v;
      st.selfFlux[k] += v;
    }
    if (keep) kept.push(keepPass(block, w, row, col, mixedJobs));
  });
  if (keep) {
    if (mixedJobs.length > 0) computeOf(problem).products(mixedJobs);
    st.blocks = kept.map((k) => (typeof k === 'function' ? k() : k));
  }
  return st;
}

/**
 * Row sums over variable columns and column sums over variable rows. Where a side mixes fixed
 * and variable units they need products of their own: those are queued on `mixed` (run by the
 * caller in one batch), and the pass is returned as a function to call once they have run.
 */
function keepPass(block: Block, w: BlockWork, row: Float64Array | null, col: Float64Array | null, mixed: ProductJob[]): BlockPass | (() => BlockPass) {
  const { tVar, sVar } = block;
  const nT = tVar.length;
  const nS = sVar.length;
  const r = row ? Float64Array.from(row) : new Float64Array(nT);
  const c = col ? Float64Array.from(col) : new Float64Array(nS);
  let rowVar: Float64Array;
  let deferred = false;
  if (block.srcFixed || !row) rowVar = new Float64Array(nT);
  else if (sVar.every((v) => v >= 0)) rowVar = r;
  else {
    rowVar = new Float64Array(nT);
    // The side not asked for is left alone by every backend: the block's scratch serves (r and c are copies).
    mixed.push({ cost: block.cost!, x: Float64Array.from(sVar, (v, b) => (v >= 0 ? w.x[b] : 0)), y: null, row: rowVar, col: w.col });
    deferred = true;
  }
  let colVar: Float64Array;
  if (block.tgtFixed || !col) colVar = new Float64Array(nS);
  else if (tVar.every((v) => v >= 0)) colVar = c;
  else {
    colVar = new Float64Array(nS);
    mixed.push({ cost: block.cost!, x: null, y: Float64Array.from(tVar, (v, a) => (v >= 0 ? w.y[a] : 0)), row: w.row, col: colVar });
    deferred = true;
  }
  const alphaRows = Float64Array.from(w.y);
  const betaCols = Float64Array.from(w.x);
  const finish = (): BlockPass => {
    const totals: [number, number, number, number] = [0, 0, 0, 0];
    if (row) {
      for (let a = 0; a < nT; a++) {
        const rv = alphaRows[a] * rowVar[a];
        const rf = alphaRows[a] * r[a] - rv;
        if (tVar[a] >= 0) {
          totals[0] += rv;
          totals[1] += rf;
        } else {
          totals[2] += rv;
          totals[3] += rf;
        }
      }
    } else {
      // Every row is fixed: split the block's cost by column.
      for (let b = 0; b < nS; b++) totals[sVar[b] >= 0 ? 2 : 3] += betaCols[b] * c[b];
    }
    return { row: r, col: c, rowVar, colVar, alphaRows, betaCols, totals };
  };
  return deferred ? finish : finish();
}

/** e^{x} and e^{-c·x}: the factors on |w| of edges into and out of each variable. */
function linearScales(problem: Problem, x: Float64Array): { A: Float64Array; B: Float64Array } {
  return { A: x.map((v) => Math.exp(v)), B: x.map((v, i) => Math.exp(-problem.degree[i] * v)) };
}

function generalStats(problem: Problem, x: Float64Array, level: Level): VarStats {
  const st = emptyStats(level === 'var' ? problem.nVars : problem.nUnits, false);
  const reg = problem.regularizer;
  const { A, B } = linearScales(problem, x);
  for (const block of problem.blocks) {
    const { nT, nS } = block.layout;
    const K = block.layout.taps.length;
    const absw = block.absw!;
    const { t: tIdx, s: sIdx } = ends(block, level);
    for (let a = 0; a < nT; a++) {
      const tv = block.tVar[a];
      const fa = tv >= 0 ? A[tv] : 1;
      const t = tIdx[a];
      for (let b = 0; b < nS; b++) {
        const sv = block.sVar[b];
        const f = fa * (sv >= 0 ? B[sv] : 1);
        const s = sIdx[b];
        let c = 0;
        let fl = 0;
        const off = (a * nS + b) * K;
        for (let k = 0; k < K; k++) {
          const val = absw[off + k] * f;
          c += gCost(reg, val);
          fl += flux(reg, val);
        }
        st.R += c;
        if (t >= 0 && t === s) {
          st.selfFlux[t] += fl;
          continue;
        }
        if (t >= 0) {
          st.inFlux[t] += fl;
          st.inCost[t] += c;
        }
        if (s >= 0) {
          st.outFlux[s] += fl;
          st.outCost[s] += c;
        }
      }
    }
  }
  return st;
}

/** ∂R/∂x_v = gs·(IN_v − c_v·OUT_v + (1 − c_v)·SELF_v). */
export function gradient(problem: Problem, st: VarStats): Float64Array {
  const gs = gradientScale(problem.regularizer);
  const g = new Float64Array(problem.nVars);
  for (let v = 0; v < problem.nVars; v++) {
    const c = problem.degree[v];
    g[v] = gs * (st.inFlux[v] - c * st.outFlux[v] + (1 - c) * st.selfFlux[v]);
  }
  return g;
}

/** |IN − c·OUT| / (IN + c·OUT) per variable, in [0, 1]. */
export function relativeDeficits(problem: Problem, st: VarStats): Float64Array {
  const r = new Float64Array(problem.nVars);
  for (let v = 0; v < problem.nVars; v++) {
    const c = problem.degree[v];
    const a = st.inFlux[v] + (c < 1 ? (1 - c) * st.selfFlux[v] : 0);
    const b = c * st.outFlux[v] + (c > 1 ? (c - 1) * st.selfFlux[v] : 0);
    const s = a + b;
    r[v] = s > 0 ? Math.abs(a - b) / s : 0;
  }
  return r;
}

export function maxOf(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  return m;
}

/** The Hessian of R at x as an operator, with its diagonal (for preconditioning). */
export interface Hessian {
  diag: Float64Array;
  apply(v: Float64Array, out: Float64Array): void;
}

interface HessBlock {
  block: Block;
  storage: CostStorage;
  /** h_ab = factor·S_ab·rowScale_a·colScale_b. */
  rowScale: Float64Array;
  colScale: Float64Array;
  rowH: Float64Array;
  colH: Float64Array;
  srcFixed: boolean;
  tgtFixed: boolean;
}

/** The Hessian at x; `pass` must come from a stats pass at the same x with `keep` set (Lp). */
export function hessian(problem: Problem, x: Float64Array, pass?: BlockPass[]): Hessian {
  const power = problem.regularizer.power;
  const hb: HessBlock[] = power !== undefined ? powerHessBlocks(problem, pass ?? varStats(problem, x, { keep: true }).blocks!, power) : generalHessBlocks(problem, x);
  const n = problem.nVars;
  const diag = new Float64Array(n);
  for (const h of hb) {
    const { tVar, sVar, sDeg, selfPairs } = h.block;
    for (let a = 0; a < tVar.length; a++) if (tVar[a] >= 0) diag[tVar[a]] += h.rowH[a];
    for (let b = 0; b < sVar.length; b++) if (sVar[b] >= 0) diag[sVar[b]] += sDeg[b] * sDeg[b] * h.colH[b];
    for (let i = 0; i < selfPairs.length; i += 2) {
      const a = selfPairs[i];
      const b = selfPairs[i + 1];
      diag[tVar[a]] -= 2 * sDeg[b] * selfH(h, a, b);
    }
  }
  const xs: Float64Array[] = hb.map((h) => new Float64Array(h.block.layout.nS));
  const yt: Float64Array[] = hb.map((h) => new Float64Array(h.block.layout.nT));
  const rows: Float64Array[] = hb.map((h) => new Float64Array(h.block.layout.nT));
  const cols: Float64Array[] = hb.map((h) => new Float64Array(h.block.layout.nS));
  return {
    diag,
    apply(v, out) {
      out.fill(0);
      // The scaled vectors of every block, then all products in one backend call.
      const jobs: ProductJob[] = [];
      const need = hb.map((h, i) => {
        const { tVar, sVar, sDeg } = h.block;
        const X = xs[i];
        const Y = yt[i];
        let anyX = false;
        let anyY = false;
        for (let b = 0; b < sVar.length; b++) {
          X[b] = sVar[b] >= 0 ? h.colScale[b] * sDeg[b] * v[sVar[b]] : 0;
          anyX ||= X[b] !== 0;
        }
        for (let a = 0; a < tVar.length; a++) {
          Y[a] = tVar[a] >= 0 ? h.rowScale[a] * v[tVar[a]] : 0;
          anyY ||= Y[a] !== 0;
        }
        const needRow = anyX && !h.tgtFixed;
        const needCol = anyY && !h.srcFixed;
        if (needRow || needCol) jobs.push({ cost: h.storage, x: needRow ? X : null, y: needCol ? Y : null, row: rows[i], col: cols[i] });
        return { needRow, needCol };
      });
      // Sums of powers: these blocks live on the CPU; a CPU backend the front end attached (its
      // threads for large blocks) runs them, a device backend does not hold them.
      if (jobs.length > 0) (power !== undefined || computeOf(problem).name === 'cpu' ? computeOf(problem) : inProcessBackend).products(jobs);
      hb.forEach((h, i) => {
        const { tVar, sVar, sDeg } = h.block;
        const { needRow, needCol } = need[i];
        // Row side: Σ_b h_ab (v_t − c_b v_s) for the target variable.
        for (let a = 0; a < tVar.length; a++) {
          const t = tVar[a];
          if (t < 0) continue;
          out[t] += h.rowH[a] * v[t] - (needRow ? h.rowScale[a] * rows[i][a] : 0);
        }
        // Column side: −c_b Σ_a h_ab (v_t − c_b v_s) for the source variable.
        for (let b = 0; b < sVar.length; b++) {
          const s = sVar[b];
          if (s < 0) continue;
          const c = sDeg[b];
          out[s] += c * c * h.colH[b] * v[s] - (needCol ? c * h.colScale[b] * cols[i][b] : 0);
        }
      });
    },
  };
}

function selfH(h: HessBlock, a: number, b: number): number {
  return costAt(h.storage, a, b) * h.rowScale[a] * h.colScale[b];
}

function powerHessBlocks(problem: Problem, pass: BlockPass[], p: number): HessBlock[] {
  const f = p * p;
  return problem.blocks.map((block, i) => {
    const { row, col, alphaRows, betaCols } = pass[i];
    const rowScale = alphaRows.map((v) => v * f);
    const colScale = betaCols;
    return {
      block,
      storage: block.cost!,
      rowScale,
      colScale,
      rowH: row.map((r, a) => r * rowScale[a]),
      colH: col.map((c, b) => c * colScale[b] * f),
      srcFixed: block.srcFixed,
      tgtFixed: block.tgtFixed,
    };
  });
}

function generalHessBlocks(problem: Problem, x: Float64Array): HessBlock[] {
  const reg = problem.regularizer;
  const gs = gradientScale(reg);
  const { A, B } = linearScales(problem, x);
  return problem.blocks.map((block) => {
    const { nT, nS } = block.layout;
    const K = block.layout.taps.length;
    const absw = block.absw!;
    const E = new Float64Array(nT * nS);
    const rowH = new Float64Array(nT);
    const colH = new Float64Array(nS);
    for (let a = 0; a < nT; a++) {
      const t = block.tVar[a];
      const fa = t >= 0 ? A[t] : 1;
      for (let b = 0; b < nS; b++) {
        const s = block.sVar[b];
        const f = fa * (s >= 0 ? B[s] : 1);
        let h = 0;
        const off = (a * nS + b) * K;
        for (let k = 0; k < K; k++) h += gs * curvature(reg, absw[off + k] * f);
        E[a * nS + b] = h;
        rowH[a] += h;
        colH[b] += h;
      }
    }
    return {
      block,
      storage: { kind: 'matrix', nT, nS, data: E },
      rowScale: new Float64Array(nT).fill(1),
      colScale: new Float64Array(nS).fill(1),
      rowH,
      colH,
      srcFixed: block.srcFixed,
      tgtFixed: block.tgtFixed,
    };
  });
}
