// synbal_torch.py acting on a model: units found by torch.fx tracing against the engine's units
// on the same model exported to ONNX (opset 13), balance_ against the engine's optimum on the
// same weights, the optimizer-state rule (SGD momentum, Adam, AdamW), BatchNorm in training
// mode, and BalanceSchedule's balance events in a schema-valid log. Python runs once
// (test/fixtures/torch/balance_torch.py, about 2 s); skipped, saying so, where no python3 with
// torch is installed (and the ONNX comparisons where its `onnx` package is missing).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inspectFile } from '../../server/src/app/analyse';
import { openNetworkFile } from '../../server/src/app/openNetwork';
import { unitScales } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { assertLogValid, validateRecord } from './monitorSchema';
import { scratchDir } from '../support/scratch';
import { pythonWith } from '../support/python';

const ROOT = join(__dirname, '..', '..');
const MODELS = ['ResCNN', 'MLP', 'Grouped', 'Cat', 'Visible'] as const;

function pythonWithTorch(): string | undefined {
  return pythonWith('import torch, torch.fx');
}

interface GroupOut { name: string; size: number; kind: string; role: string; balanceable: boolean; reasons: string[] }
interface UnitsOut { method: string; fallback: string | null; groups: GroupOut[]; ties: string[][] }
interface BalanceOut { RBefore: number; RAfter: number; deltaR: number; iterations: number; converged: boolean; maxDeficit: number; maxDeficitBefore: number; units: number; outputChange: number }
interface ModelOut { onnxNames?: Record<string, string>; units: UnitsOut; balance64: BalanceOut; balance32: BalanceOut; again: { deltaR: number; iterations: number }; sweeps: { coarse: number; plain: number } }
interface SweepRun { iterations: number; converged: boolean; RAfter: number; outputChange: number }
interface DeepOut { onnxNames?: Record<string, string>; sweeps: { coarse: SweepRun; plain: SweepRun }; balance64: BalanceOut; scales: Record<string, number[]> }
interface Summary {
  onnx: boolean;
  models: Record<string, ModelOut>;
  deep: DeepOut;
  trainModeBN: { units: UnitsOut; trainOutputChange: number; evalOutputChange: number; runningStatsChange: number; deltaR: number; maxDeficit: number };
  optimizers: Record<string, { stateInvariant: number; gradientRule: number; stepPrediction: number; maxScaleChange: number; unbalancedStepDiffers: number }>;
  schedule: { events: { step: number; deltaR: number; maxDeficit: number }[]; layers: string[] };
  fallback: { units: UnitsOut; warnings: string[]; maxDeficit: number; deltaR: number; outputChange: number };
}

/** Connected components of pairwise ties, each sorted, sorted by first member. */
function components(ties: readonly (readonly string[])[]): string[][] {
  const parent = new Map<string, string>();
  const find = (a: string): string => {
    while (parent.has(a) && parent.get(a) !== a) a = parent.get(a)!;
    return a;
  };
  for (const t of ties) for (const g of t) if (!parent.has(g)) parent.set(g, g);
  for (const t of ties) for (const g of t.slice(1)) parent.set(find(g), find(t[0]));
  const out = new Map<string, string[]>();
  for (const g of parent.keys()) out.set(find(g), [...(out.get(find(g)) ?? []), g]);
  return [...out.values()].map((c) => c.sort()).sort((a, b) => a[0].localeCompare(b[0]));
}

describe('synbal_torch.py: find_units, balance_, BalanceSchedule', () => {
  const py = pythonWithTorch();
  const out = scratchDir('synbal-torchbal-');
  after(() => rmSync(out, { recursive: true, force: true }));
  let summary: Summary | undefined;
  const run = (): Summary => {
    if (!summary) {
      execFileSync(py!, [join(ROOT, 'test', 'fixtures', 'torch', 'balance_torch.py'), join(ROOT, 'server', 'loggers'), out], { timeout: 180_000, stdio: ['ignore', 'ignore', 'pipe'] });
      summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
    }
    return summary;
  };

  for (const model of MODELS) {
    it(`${model}: the traced units and ties are the engine's on its ONNX export`, (t) => {
      if (!py) return t.skip('python3 with torch not found');
      const s = run();
      if (!s.onnx) return t.skip('python3 has no onnx package (needed to export BatchNorm unfolded)');
      const m = s.models[model];
      assert.equal(m.units.method, 'torch.fx');
      const ins = inspectFile(join(out, `${model}.onnx`), 'relu');
      const names = m.onnxNames!;
      // Balanceable units per group from the compiled problem (inspect counts a tie class's
      // shared variables under its first group only).
      const opened = openNetworkFile(join(out, `${model}.onnx`), { activation: 'relu' });
      const problem = compile(opened.network, lp(2));
      const balanceable = new Map<string, number>();
      problem.units.forEach((u, k) => {
        const name = opened.network.groups[problem.unitGroup[k]].name;
        balanceable.set(name, (balanceable.get(name) ?? 0) + (u.status === 'balanceable' ? 1 : 0));
      });
      const layers = ins.groups.filter((g) => names[g.name] !== undefined);
      assert.equal(layers.length, m.units.groups.length, `layers: ${ins.groups.map((g) => g.name).join(', ')}`);
      for (const g of layers) {
        const mine = m.units.groups.find((x) => x.name === names[g.name]);
        assert.ok(mine, `no traced group for ${g.name}`);
        assert.equal(mine.size, g.units, g.name);
        assert.equal(mine.role, g.role, `${g.name} role`);
        assert.equal(mine.balanceable ? mine.size : 0, balanceable.get(g.name), `${g.name}: balanceable units (mine: ${mine.reasons.join('; ') || 'balanceable'})`);
      }
      const engineTies = components(ins.ties.map((tie) => tie.groups.map((n) => names[n] ?? n)));
      assert.deepEqual(components(m.units.ties), engineTies);
      // Every model has something to balance; Cat has concatenated parts at offsets; Visible
      // keeps all but one layer visible, each with its reason.
      assert.ok(m.balance64.units > 0);
      if (model === 'Visible') {
        assert.deepEqual(m.units.groups.filter((g) => g.balanceable).map((g) => g.name), ['b']);
        const why = Object.fromEntries(m.units.groups.map((g) => [g.name, g.reasons.join('; ')]));
        assert.match(why.a, /is added .* to a value that does not scale with it/);
        assert.match(why.c, /sigmoid/);
        assert.match(why.d, /gelu/);
      }
    });

    it(`${model}: balance_ keeps the outputs and reaches the engine's optimum`, (t) => {
      if (!py) return t.skip('python3 with torch not found');
      const s = run();
      const b = s.models[model].balance64;
      assert.ok(b.converged && b.maxDeficit <= 1e-9, `float64 deficit ${b.maxDeficit}`);
      assert.ok(b.outputChange <= 1e-9, `float64 output change ${b.outputChange}`);
      assert.ok(b.deltaR > 0 && Math.abs(b.RBefore - b.RAfter - b.deltaR) <= 1e-12 * b.RBefore);
      const b32 = s.models[model].balance32;
      assert.ok(b32.converged && b32.maxDeficit <= 2e-7, `float32 deficit ${b32.maxDeficit}`);
      assert.ok(b32.outputChange <= 1e-5, `float32 output change ${b32.outputChange}`);
      assert.ok(Math.abs(b32.RAfter - b.RAfter) <= 1e-6 * b.RAfter, `float32 R ${b32.RAfter} vs ${b.RAfter}`);
      assert.equal(s.models[model].again.iterations, 0, 'a balanced model is left as it is');
      const sw = s.models[model].sweeps;
      assert.ok(sw.coarse <= sw.plain, `sweeps with the coarse correction ${sw.coarse}, without ${sw.plain}`);
      if (!s.onnx) return;
      const opened = openNetworkFile(join(out, `${model}.onnx`), { activation: 'relu' });
      const res = balance(compile(opened.network, lp(2)), { tolerance: 1e-10, maxIterations: 100_000 });
      assert.ok(Math.abs(res.RBefore - b.RBefore) <= 1e-9 * b.RBefore, `R before: engine ${res.RBefore}, torch ${b.RBefore}`);
      assert.ok(Math.abs(res.RAfter - b.RAfter) <= 1e-6 * b.RAfter, `R after: engine ${res.RAfter}, torch ${b.RAfter}`);
    });
  }

  it('a deep MLP (20 hidden layers of 64): the coarse correction cuts the sweeps, the optimum is the engine\'s', (t) => {
    if (!py) return t.skip('python3 with torch not found');
    const d = run().deep;
    const { coarse, plain } = d.sweeps;
    assert.ok(coarse.converged && plain.converged);
    // Counted, not timed: sweeps to tolerance 1e-7, with and without the coarse correction.
    assert.ok(coarse.iterations * 3 <= plain.iterations, `sweeps: ${coarse.iterations} with the coarse correction, ${plain.iterations} without`);
    assert.ok(Math.abs(coarse.RAfter - plain.RAfter) <= 1e-9 * plain.RAfter, `R after ${coarse.RAfter} vs ${plain.RAfter}`);
    assert.ok(coarse.outputChange <= 1e-9 && plain.outputChange <= 1e-9, `${coarse.outputChange} ${plain.outputChange}`);
    const b = d.balance64;
    assert.ok(b.converged && b.maxDeficit <= 1e-9 && b.outputChange <= 1e-9, `deficit ${b.maxDeficit}, output change ${b.outputChange}`);
    assert.equal(Object.keys(d.scales).length, 20);
    if (!run().onnx) return;
    const opened = openNetworkFile(join(out, 'DeepMLP.onnx'), { activation: 'relu' });
    const problem = compile(opened.network, lp(2));
    const res = balance(problem, { tolerance: 1e-10, maxIterations: 100_000 });
    assert.ok(Math.abs(res.RBefore - b.RBefore) <= 1e-9 * b.RBefore, `R before: engine ${res.RBefore}, torch ${b.RBefore}`);
    assert.ok(Math.abs(res.RAfter - b.RAfter) <= 1e-6 * b.RAfter, `R after: engine ${res.RAfter}, torch ${b.RAfter}`);
    // Every unit's scale, as `synbal balance --format json` reports them (unitScales per hidden group).
    const lambda = unitScales(problem, res.x);
    let compared = 0;
    opened.network.groups.forEach((g, gi) => {
      if (g.role !== 'hidden') return;
      const mine = d.scales[d.onnxNames![g.name]];
      assert.ok(mine, `no torch scales for ${g.name}`);
      assert.equal(mine.length, g.size);
      for (let k = 0; k < g.size; k++) {
        const e = lambda[problem.groupOffset[gi] + k];
        assert.ok(Math.abs(mine[k] - e) <= 1e-6 * e, `${g.name}#${k}: engine ${e}, torch ${mine[k]}`);
        compared++;
      }
    });
    assert.equal(compared, 20 * 64);
  });

  it('a model torch.fx cannot trace falls back to registration order, saying why once', (t) => {
    if (!py) return t.skip('python3 with torch not found');
    const f = run().fallback;
    assert.equal(f.units.method, 'registration order');
    assert.match(f.units.fallback ?? '', /torch\.fx could not trace Branchy/);
    assert.equal(f.warnings.length, 1, f.warnings.join(' | '));
    assert.deepEqual(f.units.groups.map((g) => [g.name, g.balanceable]), [['fc1', true]]);
    assert.ok(f.deltaR > 0 && f.maxDeficit <= 1e-9 && f.outputChange <= 1e-9);
  });

  it('BatchNorm in training mode: its gamma, beta are the units; train- and eval-mode outputs unchanged', (t) => {
    if (!py) return t.skip('python3 with torch not found');
    const bn = run().trainModeBN;
    const kinds = bn.units.groups.filter((g) => g.balanceable).map((g) => g.kind);
    assert.ok(kinds.length > 0 && kinds.every((k) => k === 'batchnorm'), kinds.join());
    assert.ok(bn.units.groups.filter((g) => g.kind === 'layer' && g.role === 'hidden').every((g) => g.reasons.some((r) => r.includes('normalized by BatchNorm'))));
    assert.deepEqual(components(bn.units.ties), [['b1.bn2', 'b2.bn2', 'bn']]);
    assert.ok(bn.trainOutputChange <= 1e-9 && bn.evalOutputChange <= 1e-9, `${bn.trainOutputChange} ${bn.evalOutputChange}`);
    assert.ok(bn.runningStatsChange <= 1e-12);
    assert.ok(bn.deltaR > 0 && bn.maxDeficit <= 1e-9);
  });

  for (const opt of ['SGD', 'Adam', 'AdamW']) {
    it(`${opt}: balance_ rescales the state (m·w, v·w² unchanged) and the next step is the rule's`, (t) => {
      if (!py) return t.skip('python3 with torch not found');
      const o = run().optimizers[opt];
      assert.ok(o.maxScaleChange > 0.1, `the test balances something (max |s - 1| = ${o.maxScaleChange})`);
      assert.ok(o.stateInvariant <= 1e-12, `state invariant ${o.stateInvariant}`);
      assert.ok(o.gradientRule <= 1e-9, `gradient g/s ${o.gradientRule}`);
      assert.ok(o.stepPrediction <= 1e-12, `step prediction ${o.stepPrediction}`);
      assert.ok(o.unbalancedStepDiffers > 1e-4, `the unbalanced step, rescaled, differs (${o.unbalancedStepDiffers})`);
    });
  }

  it('BalanceSchedule writes schema-valid records with the balance events and their ΔR', (t) => {
    if (!py) return t.skip('python3 with torch not found');
    const s = run();
    const file = join(out, 'schedule.jsonl');
    assert.equal(assertLogValid(file), 5); // steps 0 (event), 2, 4 (event), 6, 8 (event): one record a step
    const recs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; run: string; layers: { name: string }[]; balance?: { deltaR: number; RBefore: number; RAfter: number; maxDeficit: number } });
    assert.deepEqual(recs.map((r) => r.step), [0, 2, 4, 6, 8]);
    assert.deepEqual(recs.filter((r) => r.balance).map((r) => r.step), [0, 4, 8]);
    assert.deepEqual(s.schedule.events.map((e) => e.step), [0, 4, 8]);
    for (const r of recs.filter((x) => x.balance)) {
      const b = r.balance!;
      assert.ok(b.deltaR >= 0 && Math.abs(b.RBefore - b.RAfter - b.deltaR) <= 1e-9 * b.RBefore);
      assert.ok(b.maxDeficit <= 1e-7);
      assert.deepEqual(r.layers.map((l) => l.name), s.schedule.layers);
    }
    assert.ok(recs[0].balance!.deltaR > 0.1, 'the first event balances the initialised network');
    // The field is optional but checked: an event without its ΔR is not a valid record.
    assert.equal(validateRecord({ ...recs[0], balance: { RAfter: 1 } }), false);
    assert.equal(validateRecord({ ...recs[1], balance: { deltaR: 0.5 } }), true);
  });
});
