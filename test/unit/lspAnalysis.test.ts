// From a network to what the language server shows: the analysis the worker sends (its fast
// predictions agree with the engine's local solver), the listing's layout and text, and the
// diagnostics built from them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { compile } from '../../server/src/engine/compile';
import { LocalBalancer } from '../../server/src/engine/localBalance';
import type { Network } from '../../server/src/engine/network';
import { mlp } from '../../server/src/examples/networks';
import { networkJsonFormat } from '../../server/src/formats/networkJson';
import type { Regularizer } from '../../server/src/engine/regularizer';
import { lp } from '../../server/src/engine/regularizer';
import type { CheckpointAnalysis } from '../../server/src/app/analysis';
import { diagnosticsOf } from '../../server/src/lsp/diagnostics';
import { analyzeNetwork } from '../../server/src/app/analyse';
import { layoutOf, placeAt, renderListing, unitLabel, unitLine } from '../../server/src/lsp/listing';
import type { Entry } from '../../server/src/lsp/store';
import { DEFAULT_SETTINGS, type Settings } from '../../server/src/contract/settings';
import { REGULARIZERS, SHAPES } from './helpers';

function analysisOf(net: Network, reg: Regularizer = lp(2)): CheckpointAnalysis {
  const problem = compile(net, reg);
  return analyzeNetwork('/m/model.json', { format: networkJsonFormat, checkpoint: { path: '/m/model.json', format: 'synbal-network', tensors: [], files: [], warnings: [] }, network: net, notes: ['a note'] }, problem, { p: reg.power ?? 1, activation: '' }, 0);
}

function entryOf(a: CheckpointAnalysis): Entry {
  return { path: a.path, fileUri: 'file:///m/model.json', listingUri: 'synbal-listing:/m/model.json.listing', state: 'analysed', analysis: a, layout: layoutOf(a), version: 1 };
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

describe('the analysis a listing is built from', () => {
  it("predicts each unit's and each layer's λ* and ΔR as the engine's local solver does", () => {
    for (const shape of SHAPES) {
      for (const reg of REGULARIZERS) {
        const net = shape.build(4);
        const problem = compile(net, reg);
        const ref = analyze(problem, undefined, { tolerance: 0 });
        const a = analysisOf(net, reg);
        const lb = new LocalBalancer(problem, new Float64Array(problem.nVars));
        ref.layers.forEach((l, li) => {
          const mine = a.layers[li];
          for (const r of l.unitReports) {
            if (r.lambda === undefined) assert.ok(Number.isNaN(mine.columns.lambda[r.index]));
            else assert.ok(close(mine.columns.lambda[r.index], r.lambda) && close(mine.columns.deltaR[r.index], r.deltaR!), `${shape.name} ${reg.label} ${l.name}#${r.index}`);
            assert.ok(r.variable < 0 ? Number.isNaN(mine.columns.rel[r.index]) : mine.columns.rel[r.index] === r.relativeDeficit);
          }
          if (mine.tied) {
            const p = lb.predict(Array.from(problem.groupVars[li]))!;
            assert.ok(close(mine.tied.deltaR, p.deltaR) && close(Math.log(mine.tied.lambda), p.logFactor), `${shape.name} ${reg.label} ${l.name} tied`);
          }
        });
      }
    }
  });

  it('says where each unit lives in its tensors, and how coarse their dtype is', () => {
    const a = analysisOf(mlp({ sizes: [3, 4, 2], seed: 1, dtype: 'bfloat16' }));
    const h = a.layers[1];
    assert.deepEqual(h.incoming.map((s) => [s.tensor, s.axis, s.kind]), [['fc1.weight', 0, 'dense'], ['fc1.bias', 0, 'bias']]);
    assert.deepEqual(h.outgoing.map((s) => [s.tensor, s.axis, s.other]), [['fc2.weight', 1, 'output']]);
    assert.equal(h.roundoff, 2 ** -7);
  });
});

describe('the listing', () => {
  it('puts every layer and unit on the line its layout says', async () => {
    for (const shape of SHAPES) {
      const a = analysisOf(shape.build(2));
      const e = entryOf(a);
      const lines = (await renderListing(e, 1e-3, async () => {})).split('\n');
      assert.equal(lines.length, e.layout!.lineCount, shape.name);
      a.layers.forEach((l, li) => {
        assert.ok(lines[e.layout!.layerLine[li]].startsWith(`layer ${l.name}  `), shape.name);
        assert.deepEqual(placeAt(e.layout!, a, e.layout!.layerLine[li]), { kind: 'layer', layer: li });
        for (let u = 0; u < l.units; u++) {
          const line = unitLine(e.layout!, li, u);
          assert.ok(lines[line].startsWith(`  ${unitLabel(l, u)} `), `${shape.name} ${lines[line]}`);
          assert.deepEqual(placeAt(e.layout!, a, line), { kind: 'unit', layer: li, unit: u });
        }
      });
      assert.deepEqual(placeAt(e.layout!, a, 0), { kind: 'header' });
      assert.match(lines[6], /^note {9}a note$/);
    }
  });

  it('renders in chunks, yielding between them, to the same text', async () => {
    const a = analysisOf(mlp({ sizes: [500, 3000, 500, 10], seed: 1, dtype: 'float32' }));
    let pauses = 0;
    const chunked = await renderListing(entryOf(a), 1e-3, async () => void pauses++);
    assert.ok(pauses >= 1);
    assert.equal(chunked.split('\n').length, layoutOf(a).lineCount);
  });
});

describe('diagnostics', () => {
  const settings = (over: Partial<Settings> = {}): Settings => ({ ...DEFAULT_SETTINGS, ...over });

  it('per layer, then the worst units up to the cap, worst first; one summary on the file', () => {
    const e = entryOf(analysisOf(mlp({ sizes: [4, 30, 20, 2], seed: 3, std: 0.5 })));
    const d = diagnosticsOf(e, settings({ maxDiagnosticsPerLayer: 3 }));
    assert.deepEqual(d.listing.map((x) => x.code), ['layer-unbalanced', 'unit-unbalanced', 'unit-unbalanced', 'unit-unbalanced', 'layer-unbalanced', 'unit-unbalanced', 'unit-unbalanced', 'unit-unbalanced']);
    const rels = d.listing.slice(1, 4).map((x) => (x.data as { relativeDeficit: number }).relativeDeficit);
    assert.deepEqual(rels, [...rels].sort((x, y) => y - x));
    assert.equal(d.file.length, 1);
    assert.equal(diagnosticsOf(e, settings({ maxDiagnosticsPerLayer: 0 })).listing.length, 2);
    assert.deepEqual(diagnosticsOf(e, settings({ tolerance: 1 })), { listing: [], file: [] });
    assert.ok(diagnosticsOf(e, settings({ severity: 'hint' })).listing.every((x) => x.severity === 4));
  });

  it('holds bfloat16 layers to their rounding, which no fix can go below', () => {
    const a = analysisOf(mlp({ sizes: [3, 4, 2], seed: 1, dtype: 'bfloat16' }));
    for (const l of a.layers) l.columns.rel.forEach((r, u) => Number.isNaN(r) || (l.columns.rel[u] = 0.005));
    const d = diagnosticsOf(entryOf(a), settings());
    assert.deepEqual(d, { listing: [], file: [] });
  });

  it('reports a file that could not be read with one error and no listing diagnostics', () => {
    const e: Entry = { path: '/m/x.onnx', fileUri: 'file:///m/x.onnx', listingUri: 'synbal-listing:/m/x.onnx.listing', state: 'failed', failure: { kind: 'unreadable', message: '/m/x.onnx: truncated at byte 12', path: '/m/x.onnx', problem: 'truncated at byte 12' }, version: 1 };
    const d = diagnosticsOf(e, settings());
    assert.equal(d.listing.length, 0);
    assert.deepEqual(d.file.map((x) => [x.code, x.message, x.severity]), [['unreadable', 'truncated at byte 12', 1]]);
  });
});
