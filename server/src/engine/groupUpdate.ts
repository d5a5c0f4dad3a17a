// Exact balance of whole layers at once (Lp): every variable of the chosen layers is set to
// its optimum given the others, x_v = log(c·P_out/P_in)/(p(1+c)). Exact for the whole set
// when no edge joins two of its variables (one colour of a red-black layer ordering).
import type { Problem } from './compile';
import type { CoarseSpace } from './coarse';
import { alphaOf, betaOf, blockProducts, blockWork, costAt, gatherScales, type BlockPass, type ProductRequest } from './evaluate';

export function updateLayers(problem: Problem, space: CoarseSpace, x: Float64Array, inPhase: Uint8Array): void {
  const p = problem.regularizer.power;
  if (p === undefined) throw new Error('layer updates need a single-power regularizer');
  const alpha = alphaOf(problem, x);
  const beta = betaOf(problem, x);
  const pin = new Float64Array(problem.nVars);
  const pout = new Float64Array(problem.nVars);
  // The blocks that touch the phase's layers, then all their products in one backend call.
  const reqs: ProductRequest[] = [];
  problem.blocks.forEach((block, i) => {
    const t = space.blockTarget[i];
    const s = space.blockSource[i];
    const wantRow = t >= 0 && inPhase[t] === 1;
    const wantCol = s >= 0 && inPhase[s] === 1;
    if (!wantRow && !wantCol) return;
    const w = blockWork(block);
    gatherScales(block, alpha, beta, w);
    reqs.push({ block, w, wantRow, wantCol });
  });
  blockProducts(problem, reqs).forEach(({ row, col }, k) => {
    const { block, w, wantRow, wantCol } = reqs[k];
    const { tVar, sVar, selfPairs } = block;
    if (row) for (let a = 0; a < tVar.length; a++) if (tVar[a] >= 0) pin[tVar[a]] += row[a];
    if (col) for (let b = 0; b < sVar.length; b++) if (sVar[b] >= 0) pout[sVar[b]] += col[b];
    for (let k = 0; k < selfPairs.length; k += 2) {
      const a = selfPairs[k];
      const b = selfPairs[k + 1];
      const c = costAt(block.cost!, a, b);
      if (wantRow) pin[tVar[a]] -= c * w.x[b];
      if (wantCol) pout[sVar[b]] -= c * w.y[a];
    }
  });
  setOptimal(problem, space, x, inPhase, pin, pout, p);
}

function setOptimal(problem: Problem, space: CoarseSpace, x: Float64Array, inPhase: Uint8Array, pin: Float64Array, pout: Float64Array, p: number): void {
  for (let v = 0; v < problem.nVars; v++) {
    if (inPhase[space.of[v]] !== 1 || !(pin[v] > 0) || !(pout[v] > 0)) continue;
    const c = problem.degree[v];
    x[v] = Math.log((c * pout[v]) / pin[v]) / (p * (1 + c));
  }
}

/**
 * The same update right after a coarse step y, without reading any weight: the stats pass
 * kept each block's products, and the coarse step multiplied every variable column of a
 * block by one factor (its layer's), and every variable row by another.
 */
export function updateLayersFromPass(problem: Problem, space: CoarseSpace, x: Float64Array, inPhase: Uint8Array, pass: BlockPass[], y: Float64Array): void {
  const p = problem.regularizer.power!;
  const pin = new Float64Array(problem.nVars);
  const pout = new Float64Array(problem.nVars);
  problem.blocks.forEach((block, i) => {
    const t = space.blockTarget[i];
    const s = space.blockSource[i];
    const bp = pass[i];
    const { tVar, sVar } = block;
    if (t >= 0 && inPhase[t] === 1) {
      // β of variable columns moved by e^{−p·c·y_s}; fixed columns did not.
      const f = s >= 0 ? Math.exp(-p * space.degree[s] * y[s]) : 1;
      for (let a = 0; a < tVar.length; a++) if (tVar[a] >= 0) pin[tVar[a]] += bp.rowVar[a] * f + (bp.row[a] - bp.rowVar[a]);
    }
    if (s >= 0 && inPhase[s] === 1) {
      const f = t >= 0 ? Math.exp(p * y[t]) : 1;
      for (let b = 0; b < sVar.length; b++) if (sVar[b] >= 0) pout[sVar[b]] += bp.colVar[b] * f + (bp.col[b] - bp.colVar[b]);
    }
  });
  setOptimal(problem, space, x, inPhase, pin, pout, p);
}

/** A two-colouring of the layers when no block joins two layers of one colour (or a layer to itself). */
export function twoColouring(problem: Problem, space: CoarseSpace): Uint8Array | undefined {
  const adj: number[][] = Array.from({ length: space.size }, () => []);
  for (let i = 0; i < problem.blocks.length; i++) {
    const t = space.blockTarget[i];
    const s = space.blockSource[i];
    if (t < 0 || s < 0) continue;
    if (t === s) return undefined;
    adj[t].push(s);
    adj[s].push(t);
  }
  const colour = new Int8Array(space.size).fill(-1);
  for (let start = 0; start < space.size; start++) {
    if (colour[start] >= 0) continue;
    colour[start] = 0;
    const queue = [start];
    while (queue.length) {
      const k = queue.pop()!;
      for (const j of adj[k]) {
        if (colour[j] < 0) {
          colour[j] = 1 - colour[k];
          queue.push(j);
        } else if (colour[j] === colour[k]) return undefined;
      }
    }
  }
  return Uint8Array.from(colour);
}
