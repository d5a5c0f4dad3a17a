// The paper's theorems as properties, on networks of several shapes and several regularizers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyScales } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { maxOf, relativeDeficits, varStats } from '../../server/src/engine/evaluate';
import { LocalBalancer } from '../../server/src/engine/localBalance';
import { rng } from '../../server/src/engine/random';
import { lp } from '../../server/src/engine/regularizer';
import { allWeights, bipuNet, maxRelDiff, outputs, randomInputs, REGULARIZERS, SHAPES } from './helpers';

describe('balancing changes no output', () => {
  for (const shape of SHAPES) {
    for (const reg of REGULARIZERS) {
      it(`${shape.name}, ${reg.label}`, () => {
        const net = shape.build(11);
        const problem = compile(net, reg);
        assert.ok(problem.nVars > 0, 'the network has balanceable units');
        const result = balance(problem, { tolerance: 1e-9 });
        assert.ok(result.converged, `converged (max relative deficit ${result.maxRelativeDeficitAfter})`);
        // The scaling is not trivial: some factor moved well away from 1.
        assert.ok(maxOf(result.x.map(Math.abs)) > 1e-3, 'some unit was rescaled');
        const balanced = applyScales(problem, result.x);
        assert.ok(maxRelDiff(allWeights(net), allWeights(balanced)) > 1e-3, 'weights changed');
        const inputs = randomInputs(net, 5, shape.steps ?? 1);
        const before = outputs(net, inputs, shape.steps);
        const after = outputs(balanced, inputs, shape.steps);
        assert.ok(maxRelDiff(before, after, 1e-9) < 1e-6, `outputs agree: ${maxRelDiff(before, after, 1e-9)}`);
      });
    }
  }
});

describe('R never increases, and each balance lowers it by exactly (√IN − √OUT)²', () => {
  for (const shape of SHAPES) {
    for (const reg of REGULARIZERS) {
      it(`${shape.name}, ${reg.label}`, () => {
        const problem = compile(shape.build(3), reg);
        const x = new Float64Array(problem.nVars);
        const lb = new LocalBalancer(problem, x);
        const rand = rng(9);
        let R = varStats(problem, x).R;
        for (let step = 0; step < 3 * problem.nVars; step++) {
          const v = Math.floor(rand() * problem.nVars);
          const prof = lb.profile([v]);
          const res = lb.balance([v])!;
          const after = varStats(problem, x).R;
          assert.ok(after <= R * (1 + 1e-12), `step ${step}: R rose from ${R} to ${after}`);
          assert.ok(Math.abs(R - after - res.deltaR) <= 1e-9 * R, `step ${step}: realised ΔR ${R - after} vs predicted ${res.deltaR}`);
          if (reg.power !== undefined && prof.selfSum === 0) {
            const closed = (Math.sqrt(prof.inSum) - Math.sqrt(prof.outSum)) ** 2;
            assert.ok(Math.abs(R - after - closed) <= 1e-9 * R, `step ${step}: ΔR ${R - after} vs (√IN − √OUT)² ${closed}`);
          }
          R = after;
        }
      });
    }
  }
});

describe('uniqueness: every schedule reaches the one balanced state', () => {
  const cases = [
    { shape: SHAPES[0], reg: lp(2) },
    { shape: SHAPES[2], reg: lp(1) },
    { shape: SHAPES.find((s) => s.name === 'recurrent relu net')!, reg: lp(2) },
    { shape: SHAPES.find((s) => s.name === 'residual + skip')!, reg: REGULARIZERS[4] },
  ];
  for (const { shape, reg } of cases) {
    it(`100 stochastic schedules agree with the fast solver: ${shape.name}, ${reg.label}`, () => {
      const net = shape.build(21);
      const problem = compile(net, reg);
      const fast = balance(problem, { tolerance: 1e-12 });
      assert.ok(fast.converged);
      const reference = allWeights(applyScales(problem, fast.x));
      let worst = 0;
      for (let seed = 1; seed <= 100; seed++) {
        const r = balance(problem, { method: 'stochastic', seed, tolerance: 1e-11 });
        assert.ok(r.converged, `seed ${seed} converged`);
        worst = Math.max(worst, maxRelDiff(reference, allWeights(applyScales(problem, r.x)), 1e-12));
      }
      assert.ok(worst < 1e-6, `largest relative difference ${worst}`);
    });
  }

  it('every named method lands on the same weights', () => {
    const problem = compile(SHAPES[0].build(4), lp(2));
    const reference = balance(problem, { method: 'newton', tolerance: 1e-12 });
    for (const method of ['red-black', 'optimal', 'cyclic', 'stochastic', 'layers', 'odd-even'] as const) {
      const r = balance(problem, { method, tolerance: 1e-11, seed: 3 });
      assert.ok(r.converged, method);
      assert.ok(maxRelDiff(reference.x.map(Math.exp), r.x.map(Math.exp)) < 1e-6, `${method} Λ agree`);
    }
  });
});

describe('BiPU units end with IN = c·OUT', () => {
  for (const degree of [2, 3, 0.5]) {
    it(`degree ${degree}`, () => {
      const problem = compile(bipuNet(6, degree), lp(2));
      assert.equal(problem.nVars, 5);
      const r = balance(problem, { tolerance: 1e-10 });
      assert.ok(r.converged);
      assert.ok(r.maxRelativeDeficitBefore > 1e-3, 'it started out of balance');
      const st = varStats(problem, r.x);
      for (let v = 0; v < problem.nVars; v++) {
        assert.ok(Math.abs(st.inFlux[v] - degree * st.outFlux[v]) <= 1e-8 * st.inFlux[v], `unit ${v}: IN ${st.inFlux[v]} vs c·OUT ${degree * st.outFlux[v]}`);
      }
      const inputs = randomInputs(problem.network, 2);
      const before = outputs(problem.network, inputs);
      const after = outputs(applyScales(problem, r.x), inputs);
      assert.ok(maxRelDiff(before, after, 1e-9) < 1e-6);
    });
  }
});

describe('a recurrent ReLU net converges', () => {
  it('to max relative deficit 1e-10 with Newton-CG, and cyclic balancing agrees', () => {
    const problem = compile(SHAPES.find((s) => s.name === 'recurrent relu net')!.build(8), lp(2));
    const fast = balance(problem, { tolerance: 1e-10 });
    assert.equal(fast.method, 'newton-cg');
    assert.ok(fast.converged);
    assert.ok(maxOf(relativeDeficits(problem, varStats(problem, fast.x))) <= 1e-10);
    const slow = balance(problem, { method: 'cyclic', tolerance: 1e-10 });
    assert.ok(slow.converged);
    assert.ok(maxRelDiff(fast.x.map(Math.exp), slow.x.map(Math.exp)) < 1e-6);
  });
});
