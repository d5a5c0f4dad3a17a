// Engine operations beyond the theorems: tied closed form, dead units, dtypes, scopes, reports.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { other, relu } from '../../server/src/engine/activation';
import { analyze } from '../../server/src/engine/analyze';
import { applyScales, unitScales } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { varStats } from '../../server/src/engine/evaluate';
import { lp, parseRegularizer } from '../../server/src/engine/regularizer';
import { layerFactorsFromMatrixFactors, paperEq127Factors, tiedMatrixFactors } from '../../server/src/engine/tiedLayers';
import { mlp } from '../../server/src/examples/networks';
import { tensorValues } from '../../server/src/tensor/tensor';
import { maxRelDiff, outputs, randomInputs } from './helpers';

/** Per-matrix costs Σ|w|^p of a bias-free chain, in layer order. */
function matrixCosts(net: ReturnType<typeof mlp>, p: number): number[] {
  return net.tensors.map((t) => tensorValues(t).reduce((s, w) => s + Math.abs(w) ** p, 0));
}

describe('tied balancing of a bias-free chain', () => {
  for (const p of [1, 2, 3]) {
    it(`converges to the corrected closed form (p = ${p})`, () => {
      const net = mlp({ sizes: [6, 5, 4, 7, 3], bias: false, seed: 2, std: 0.7 });
      const problem = compile(net, lp(p));
      const r = balance(problem, { method: 'tied-layers', tolerance: 1e-12 });
      assert.ok(r.converged);
      const expected = layerFactorsFromMatrixFactors(tiedMatrixFactors(matrixCosts(net, p), p));
      const got = problem.groupVars.filter((v) => v.length).map((vars) => Math.exp(r.x[vars[0]]));
      assert.ok(maxRelDiff(expected, got) < 1e-8, `${expected} vs ${got}`);
      // Tied: every unit of a layer got the same factor.
      for (const vars of problem.groupVars) for (const v of vars) assert.equal(r.x[v], r.x[vars[0]]);
    });
  }

  it("the paper's printed eq. 12.7 is not optimal, the corrected form is", () => {
    const net = mlp({ sizes: [6, 5, 4, 7, 3], bias: false, seed: 2, std: 0.7 });
    const costs = matrixCosts(net, 2);
    const norms = costs.map(Math.sqrt);
    const R = (m: number[]) => m.reduce((s, mi, l) => s + mi * mi * costs[l], 0);
    const corrected = tiedMatrixFactors(costs, 2);
    const printed = paperEq127Factors(norms);
    // Both keep Π M_l = 1 ...
    assert.ok(Math.abs(corrected.reduce((a, b) => a * b, 1) - 1) < 1e-12);
    assert.ok(Math.abs(printed.reduce((a, b) => a * b, 1) - 1) < 1e-12);
    // ... the printed one is the square of the corrected one, and costs more.
    corrected.forEach((m, l) => assert.ok(Math.abs(printed[l] - m * m) < 1e-9 * printed[l]));
    assert.ok(R(printed) > R(corrected) * (1 + 1e-3), `R(printed) ${R(printed)} vs R(corrected) ${R(corrected)}`);
    // N = 2 check from theory.md: M_1 = (‖A_2‖/‖A_1‖)^(1/2).
    const two = tiedMatrixFactors([4, 9], 2);
    assert.ok(Math.abs(two[0] - Math.sqrt(3 / 2)) < 1e-12);
  });
});

describe('dead units', () => {
  it('are reported and never scaled', () => {
    const net = mlp({ sizes: [4, 5, 3], seed: 3 });
    const w1 = net.tensors.find((t) => t.name === 'fc1.weight')!;
    const b1 = net.tensors.find((t) => t.name === 'fc1.bias')!;
    const w2 = net.tensors.find((t) => t.name === 'fc2.weight')!;
    for (let j = 0; j < 4; j++) w1.data[1 * 4 + j] = 0; // unit 1: no incoming weights ...
    b1.data[1] = 0; // ... and no bias
    for (let i = 0; i < 3; i++) w2.data[i * 5 + 3] = 0; // unit 3: no outgoing weights
    const problem = compile(net, lp(2));
    assert.equal(problem.units[problem.groupOffset[1] + 1].status, 'dead');
    assert.equal(problem.units[problem.groupOffset[1] + 3].status, 'dead');
    assert.equal(problem.nVars, 3);
    const r = balance(problem);
    assert.ok(r.converged);
    const lambda = unitScales(problem, r.x);
    assert.equal(lambda[problem.groupOffset[1] + 1], 1);
    assert.equal(lambda[problem.groupOffset[1] + 3], 1);
    const report = analyze(problem, r.x);
    assert.equal(report.dead, 2);
    assert.deepEqual(report.layers[1].reasons.map((x) => x.reason).sort(), ['all incoming weights are zero', 'all outgoing weights are zero']);
  });
});

describe('weights in float32, float16 and bfloat16', () => {
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    it(`${dtype}: costs in float64, weights written back in ${dtype}`, () => {
      const net = mlp({ sizes: [6, 8, 5, 3], seed: 4, dtype, std: 0.5 });
      const problem = compile(net, lp(2));
      // The costs equal float64 sums over the decoded stored values.
      const decoded = tensorValues(net.tensors[0]);
      const st = varStats(problem, new Float64Array(problem.nVars));
      let expectIn0 = tensorValues(net.tensors[1])[0] ** 2;
      for (let j = 0; j < 6; j++) expectIn0 += decoded[j] ** 2;
      assert.ok(Math.abs(st.inFlux[0] - expectIn0) < 1e-14 * expectIn0);
      const r = balance(problem);
      assert.ok(r.converged);
      const out = applyScales(problem, r.x);
      for (const t of out.tensors) {
        assert.equal(t.dtype, dtype);
        assert.equal(t.data.constructor, net.tensors.find((u) => u.name === t.name)!.data.constructor);
      }
      // Rounding to the dtype leaves a deficit floor near its precision, and the function intact to it.
      const eps = dtype === 'float32' ? 1e-6 : dtype === 'float16' ? 3e-3 : 2e-2;
      const after = compile(out, lp(2));
      assert.ok(analyze(after).maxRelativeDeficit < 20 * eps, `deficit after writing ${analyze(after).maxRelativeDeficit}`);
      const inputs = randomInputs(net, 1);
      assert.ok(maxRelDiff(outputs(net, inputs), outputs(out, inputs), 1e-3) < 20 * eps);
    });
  }
});

describe('scopes', () => {
  const net = mlp({ sizes: [4, 6, 5, 3], seed: 5, std: 0.6 });
  const problem = compile(net, lp(2));

  it('a unit: only that unit moves, and it ends balanced', () => {
    const r = balance(problem, { scope: { kind: 'unit', layer: 'h1', index: 2 } });
    const moved = Array.from(r.x).map((v, i) => (v !== 0 ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(moved, [problem.unitVar[problem.groupOffset[1] + 2]]);
    const rep = analyze(problem, r.x);
    assert.ok(rep.layers[1].unitReports[2].relativeDeficit < 1e-12);
    assert.ok(r.RAfter < r.RBefore);
  });

  it('a layer, each unit: every unit of the layer ends balanced', () => {
    const r = balance(problem, { scope: { kind: 'layer', layer: 'h2' } });
    const rep = analyze(problem, r.x);
    assert.ok(rep.layers[2].maxRelativeDeficit < 1e-12);
    assert.ok(rep.layers[1].maxRelativeDeficit > 1e-3);
  });

  it('a layer, tied: one factor, layer totals balanced', () => {
    const r = balance(problem, { scope: { kind: 'layer', layer: 'h1', tied: true } });
    const xs = Array.from(problem.groupVars[1], (v) => r.x[v]);
    assert.ok(xs.every((v) => v === xs[0]) && xs[0] !== 0);
    const rep = analyze(problem, r.x);
    const l = rep.layers[1];
    assert.ok(Math.abs(l.inTotal - l.outTotal) < 1e-12 * l.inTotal);
  });

  it('errors name the layer and the reason', () => {
    assert.throws(() => balance(problem, { scope: { kind: 'layer', layer: 'nope' } }), /no layer named "nope"/);
    assert.throws(() => balance(problem, { scope: { kind: 'unit', layer: 'h1', index: 99 } }), /h1 has no unit 99/);
    assert.throws(() => balance(problem, { scope: { kind: 'unit', layer: 'input', index: 0 } }), /cannot be balanced: input unit/);
  });
});

describe('analysis', () => {
  it('reports per unit, per layer and overall, with λ* and ΔR that match a unit balance', () => {
    const net = mlp({ sizes: [3, 4, 2], seed: 6, activation: (l) => (l === 0 ? relu() : relu()) });
    const problem = compile(net, lp(2));
    const rep = analyze(problem);
    assert.equal(rep.parameters, 3 * 4 + 4 + 2 * 4 + 2);
    assert.equal(rep.balanceable, 4);
    const u = rep.layers[1].unitReports[1];
    assert.ok(u.relativeDeficit > 0 && u.relativeDeficit < 1);
    assert.equal(u.deficit, (u.in - u.out) ** 2);
    assert.ok(Math.abs(u.lambda! - (u.out / u.in) ** 0.25) < 1e-12);
    const r = balance(problem, { scope: { kind: 'unit', layer: 'h1', index: 1 } });
    assert.ok(Math.abs(r.RBefore - r.RAfter - u.deltaR!) < 1e-12 * r.RBefore);
    assert.ok(Math.abs(rep.R - r.RBefore) < 1e-12 * rep.R);
  });

  it('units with a non-homogeneous activation stay visible, with the reason', () => {
    const net = mlp({ sizes: [3, 4, 4, 2], seed: 7, activation: (l) => (l === 0 ? other('tanh') : relu()) });
    const rep = analyze(compile(net, lp(2)));
    assert.equal(rep.layers[1].balanceable, 0);
    assert.deepEqual(rep.layers[1].reasons, [{ reason: 'activation tanh is not positively homogeneous', units: 4 }]);
    assert.equal(rep.layers[2].balanceable, 4);
  });

  it('a hidden layer without a stated activation is never assumed homogeneous', () => {
    const net = mlp({ sizes: [3, 4, 2], seed: 7 });
    delete net.groups[1].activation;
    const rep = analyze(compile(net, lp(2)));
    assert.equal(rep.balanceable, 0);
    assert.deepEqual(rep.layers[1].reasons, [{ reason: 'activation unknown', units: 4 }]);
  });
});

describe('regularizer parsing', () => {
  it('reads Lp and sums of powers, and rejects nonsense', () => {
    assert.equal(parseRegularizer('2').power, 2);
    assert.equal(parseRegularizer('L0.5').power, 0.5);
    assert.deepEqual(parseRegularizer('0.5*L2+0.1*L1').terms, [{ coef: 0.5, p: 2 }, { coef: 0.1, p: 1 }]);
    assert.throws(() => parseRegularizer('L-1'), /positive/);
    assert.throws(() => parseRegularizer('abc'), /cannot read regularizer/);
  });
});
