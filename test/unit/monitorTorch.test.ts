// The PyTorch logger (server/loggers/synbal_torch.py) in a real short training run: every line
// valid against the schema, read back through the log reader, and the logged IN/OUT checked
// against the engine's analysis of the checkpoint saved at the last logged step (MLP) and
// against costs computed here from the saved weights (conv net, p = 1.5). Skipped, saying so,
// where no python3 with torch is installed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { openNetworkFile } from '../../server/src/app/openNetwork';
import { LogRun } from '../../client/src/monitor/runs/logRun';
import type { MonitorFrame } from '../../server/src/contract/monitor';
import { Recorder } from './monitorHelpers';
import { assertLogValid } from './monitorSchema';
import { pythonWith } from '../support/python';

const ROOT = join(__dirname, '..', '..');

function pythonWithTorch(): string | undefined {
  return pythonWith('import torch');
}

async function lastFrame(file: string): Promise<{ frame: MonitorFrame; steps: number[]; label: string }> {
  const ev = new Recorder();
  const run = new LogRun(file, file, ev, { pollMs: 60_000 });
  await run.pollNow();
  const frame = await run.frame(run.length - 1);
  run.dispose();
  return { frame, steps: ev.steps(), label: run.info.label };
}

function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 2e-6 * Math.abs(b) + 1e-12, `${what}: ${a} vs ${b}`);
}

type Nested = number | Nested[];
const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);

describe('synbal_torch.py', () => {
  const py = pythonWithTorch();
  const out = mkdtempSync(join(tmpdir(), 'synbal-torch-'));
  after(() => rmSync(out, { recursive: true, force: true }));
  let ran = false;
  const train = () => {
    if (!ran) execFileSync(py!, [join(ROOT, 'test', 'fixtures', 'monitor', 'train_torch.py'), join(ROOT, 'server', 'loggers'), out], { timeout: 120_000 });
    ran = true;
  };

  it('logs an MLP whose IN/OUT match the engine on the checkpoint saved at the same step', async (t) => {
    if (!py) return t.skip('python3 with torch not found');
    train();
    const file = join(out, 'mlp.jsonl');
    assert.equal(assertLogValid(file), 7);
    const { frame, steps, label } = await lastFrame(file);
    assert.deepEqual(steps, [0, 5, 10, 15, 20, 25, 30]);
    assert.equal(label, 'torch mlp');
    const opened = openNetworkFile(join(out, 'mlp_final.pt'), { activation: 'relu' });
    const ref = analyze(compile(opened.network, lp(2)), undefined, { skipPredictions: true }).layers.filter((l) => l.role === 'hidden');
    assert.equal(frame.layers.length, ref.length);
    assert.equal(ref.length, 2);
    for (const [k, l] of frame.layers.entries()) {
      assert.equal(l.in!.length, ref[k].units);
      for (let u = 0; u < ref[k].units; u++) {
        close(l.in![u], ref[k].unitReports[u].in, `${l.name}#${u} IN`);
        close(l.out![u], ref[k].unitReports[u].out, `${l.name}#${u} OUT`);
      }
    }
    assert.equal(existsSync(join(out, 'rank1.jsonl')), false, 'only rank 0 writes');
  });

  it('logs a conv net (conv → pool → conv → flatten → linear) with p = 1.5 as its saved weights give', async (t) => {
    if (!py) return t.skip('python3 with torch not found');
    train();
    const file = join(out, 'cnn.jsonl');
    assert.equal(assertLogValid(file), 4);
    const { frame, steps } = await lastFrame(file);
    assert.deepEqual(steps, [0, 10, 20, 30]);
    const w = JSON.parse(readFileSync(join(out, 'cnn_final.json'), 'utf8')) as Record<string, Nested[]>;
    const p = 1.5;
    const c = (v: number) => Math.abs(v) ** p;
    // IN: the unit's row (all of it) and bias; OUT: the next weight's entries on the unit's input slice.
    const inOf = (name: string) => w[`${name}.weight`].map((row, u) => flat(row).reduce((s, v) => s + c(v), 0) + c(flat(w[`${name}.bias`])[u]));
    const outOf = (next: string, units: number) => {
      const o = new Array(units).fill(0);
      for (const row of w[`${next}.weight`]) {
        const f = flat(row);
        const per = f.length / units;
        f.forEach((v, i) => (o[Math.floor(i / per)] += c(v)));
      }
      return o;
    };
    const expected: [string, string, number][] = [['conv1', 'conv2', 4], ['conv2', 'fc1', 5], ['fc1', 'fc2', 6]];
    assert.deepEqual(frame.layers.map((l) => l.name), expected.map((e) => e[0]));
    for (const [k, [name, next, units]] of expected.entries()) {
      const inC = inOf(name);
      const outC = outOf(next, units);
      for (let u = 0; u < units; u++) {
        close(frame.layers[k].in![u], inC[u], `${name}#${u} IN`);
        close(frame.layers[k].out![u], outC[u], `${name}#${u} OUT`);
        close(frame.layers[k].relativeDeficit[u], Math.abs(inC[u] - outC[u]) / (inC[u] + outC[u]), `${name}#${u} rel`);
      }
    }
  });
});
