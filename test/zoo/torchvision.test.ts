// npm run test:zoo: torchvision architectures, exported by PyTorch's own ONNX exporter at test time
// (test/zoo/zoo.py, cached in .cache/zoo/), read, counted, balanced, written and run. For each:
// - every file reads, whatever operators it holds (an operator the builder does not model is a
//   barrier with a reason, never a failure);
// - each Conv/Gemm layer is balanceable exactly when the independent count, made in Python from
//   the PyTorch module (torch.fx), says so, except the differences listed in KNOWN with their reason;
// - the balanced copy runs in onnxruntime on the saved input and gives PyTorch's output.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { balance } from '../../server/src/engine/balance';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { onnxFormat } from '../../server/src/formats/onnx/format';
import { onnxStructure } from '../../server/src/formats/onnx/reader';
import { compareOutputs, onnxRuntime, runOnnx } from '../../server/src/formats/onnx/verify';
import { moduleOfNode, zooCacheDir, zooModels, zooProblem, type ZooModel } from '../support/zoo';
import { scratchDir } from '../support/scratch';

const MODELS = (process.env.SYNBAL_ZOO_MODELS ?? [
  'resnet18', 'mobilenet_v2', 'mobilenet_v3_small', 'squeezenet1_1', 'densenet121', 'shufflenet_v2_x1_0',
  'regnet_y_400mf', 'efficientnet_b0', 'googlenet', 'mnasnet0_5', 'lraspp_mobilenet_v3_large', 'r3d_18',
  'resnet50', 'fcn_resnet50',
].join(',')).split(',').filter(Boolean);

/**
 * Layers where the builder and the Python count disagree, with why. `modules` matches the
 * PyTorch module names; `python`/`builder` say which side calls them balanceable.
 */
const KNOWN: Record<string, { modules: RegExp; python: boolean; builder: boolean; why: string }[]> = {
  shufflenet_v2_x1_0: [
    {
      modules: /^(conv1\.0|stage\d\.\d\.branch\d\.\d)$/,
      python: true,
      builder: false,
      why: 'the values pass x.chunk(2, dim=1) (an ONNX Slice of the channel axis) or channel_shuffle (Reshape → Transpose → Reshape, which interleaves two groups\' channels): the network model places a group\'s units on one contiguous range of a value\'s channel axis, so a group split in halves or interleaved with another is not represented; such units stay visible',
    },
  ],
};

/** Largest |a − b| / max(|b|) over one output: PyTorch and onnxruntime differ by float32 rounding. */
function relativeToScale(a: Float64Array, b: Float32Array): number {
  let scale = 0;
  let worst = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / (scale || 1);
}

interface Row {
  model: string;
  units: number;
  balanceable: number;
  python: number;
  extra: number;
  reasons: [string, number][];
  readMs: number;
  balanceMs: number;
  iterations: number;
  rDrop: number;
  vsOriginal: number;
  vsPytorch: number;
}

const rows: Row[] = [];
const problem = zooProblem();
let tmp = '';

describe('torchvision corpus (ONNX, torch.onnx.export opset 13)', { skip: problem }, () => {
  let models = new Map<string, ZooModel>();
  before(() => {
    tmp = scratchDir('synbal-zoo-');
    models = new Map(zooModels(MODELS).map((m) => [m.name, m]));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (rows.length > 0) {
      writeFileSync(join(zooCacheDir(), 'report.json'), JSON.stringify(rows, null, 1));
      console.log(table(rows));
    }
  });

  for (const name of MODELS) {
    it(`${name}: reads, balanceable layers as counted in PyTorch, balanced copy computes PyTorch's output`, async () => {
      const m = models.get(name)!;
      const t0 = performance.now();
      const cp = onnxFormat.open(m.onnx);
      const { network } = onnxFormat.toNetwork(cp, {});
      const prob = compile(network, lp(2));
      const readMs = performance.now() - t0;

      // Layer groups are named after their node; others (per-channel affine maps) are extra units.
      const nodeNames = new Set(onnxStructure(cp).model.graph.nodes.filter((n) => ['Conv', 'Gemm', 'MatMul', 'ConvTranspose'].includes(n.opType)).map((n) => n.name));
      const byModule = new Map<string, { units: number; balanceable: number }>();
      let extra = 0;
      const reasons = new Map<string, number>();
      prob.network.groups.forEach((g, gi) => {
        if (g.role === 'input') return;
        const units = prob.units.slice(prob.groupOffset[gi], prob.groupOffset[gi] + g.size);
        const ok = units.filter((u) => u.status === 'balanceable').length;
        if (!nodeNames.has(g.name)) {
          extra += ok;
          return;
        }
        for (const u of units) if (u.status !== 'balanceable') reasons.set(shortReason(u.reason ?? u.status), (reasons.get(shortReason(u.reason ?? u.status)) ?? 0) + 1);
        const mod = moduleOfNode(g.name) ?? g.name;
        byModule.set(mod, { units: g.size, balanceable: ok });
      });

      // Layer by layer against the Python count.
      const known = KNOWN[name] ?? [];
      const unexplained: string[] = [];
      for (const layer of m.meta.layers) {
        const got = byModule.get(layer.module);
        assert.ok(got, `${name}: no ONNX layer for module ${layer.module}`);
        assert.equal(got.units, layer.units, `${name}: ${layer.module} units`);
        const builderSays = got.balanceable === got.units;
        if (!builderSays && got.balanceable !== 0) unexplained.push(`${layer.module}: ${got.balanceable} of ${got.units} balanceable`);
        if (builderSays === layer.balanceable) continue;
        const k = known.find((x) => x.modules.test(layer.module) && x.python === layer.balanceable && x.builder === builderSays);
        if (!k) unexplained.push(`${layer.module}: python ${layer.balanceable ? 'balanceable' : `not (${layer.reason})`}, builder ${builderSays ? 'balanceable' : 'not'}`);
      }
      assert.deepEqual(unexplained, [], `${name}: layers where the builder and the PyTorch count disagree`);
      const balanceableUnits = [...byModule.values()].reduce((s, x) => s + x.balanceable, 0);
      const layerUnits = [...byModule.values()].reduce((s, x) => s + x.units, 0);

      // Balance, write, run.
      const t1 = performance.now();
      const r = balance(prob, { tolerance: 1e-6 });
      const balanceMs = performance.now() - t1;
      assert.ok(r.RAfter <= r.RBefore, `${name}: R rose`);
      const changed = scaledTensors(prob, r.x);
      const out = join(tmp, `${name}.balanced.onnx`);
      onnxFormat.write(cp, changed, out);
      const ort = await onnxRuntime();
      const feeds = { input: new ort.Tensor('float32', m.input, m.meta.input) };
      const before = (await runOnnx(m.onnx, feeds)).get('output')!;
      const balanced = (await runOnnx(out, feeds)).get('output')!;
      const vsOriginal = compareOutputs(new Map([['output', before]]), new Map([['output', balanced]])).maxRelative;
      const vsPytorch = relativeToScale(balanced, m.output);
      rmSync(out, { force: true });
      rows.push({
        model: name, units: layerUnits, balanceable: balanceableUnits, python: m.meta.balanceable, extra,
        reasons: [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 3), readMs, balanceMs, iterations: r.iterations,
        rDrop: 1 - r.RAfter / r.RBefore, vsOriginal, vsPytorch,
      });
      assert.ok(vsOriginal < 1e-4, `${name}: the balanced copy differs from the original by ${vsOriginal} (relative)`);
      assert.ok(vsPytorch < 1e-4, `${name}: the balanced copy differs from PyTorch's output by ${vsPytorch} (of the output's scale)`);
    });
  }
});

function shortReason(r: string): string {
  return r.replace(/'[^']*'/g, '…').replace(/\s+\S*[/.][^\s]*/g, ' …').slice(0, 90);
}

function table(rs: readonly Row[]): string {
  const lines = ['| model | units (Conv/Gemm) | balanceable | Python count | + affine units | top reasons for the rest | read | balance | R drop | vs original | vs PyTorch |', '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|'];
  for (const r of rs) {
    const reasons = r.reasons.map(([k, n]) => `${n}: ${k}`).join('; ');
    lines.push(`| ${r.model} | ${r.units} | ${r.balanceable} | ${r.python} | ${r.extra} | ${reasons} | ${r.readMs.toFixed(0)} ms | ${r.balanceMs.toFixed(0)} ms (${r.iterations} it.) | ${(100 * r.rDrop).toFixed(1)}% | ${r.vsOriginal.toExponential(1)} | ${r.vsPytorch.toExponential(1)} |`);
  }
  return lines.join('\n');
}
