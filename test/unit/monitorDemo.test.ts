// The demo run (npm run demo:train), shortened: its three logs, read back through the log
// reader, show the paper's claims; every line is valid against the schema.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { runDemo } from '../../server/src/monitor/demoRuns';
import { LogRun } from '../../client/src/monitor/runs/logRun';
import { BALANCE_DELTA_R, BALANCE_FIELDS, BALANCE_MAX_DEFICIT, type MonitorFrame, type MonitorSeries } from '../../server/src/contract/monitor';
import { Recorder } from './monitorHelpers';
import { assertLogValid } from './monitorSchema';

const out = mkdtempSync(join(tmpdir(), 'synbal-demo-'));
after(() => rmSync(out, { recursive: true, force: true }));

interface Read {
  series: MonitorSeries;
  first: MonitorFrame;
  last: MonitorFrame;
}

async function read(file: string): Promise<Read> {
  const ev = new Recorder();
  const run = new LogRun(file, file, ev, { pollMs: 60_000 });
  await run.pollNow();
  const series = ev.of('series')[0].s;
  const r = { series, first: await run.frame(0), last: await run.frame(run.length - 1) };
  run.dispose();
  return r;
}

/** Σ over layers of Σ|IN − OUT| at step index i (series value k = 0). */
function total(s: MonitorSeries, i: number): number {
  let t = 0;
  for (let l = 0; l < s.layers.length; l++) t += s.values[(i * s.layers.length + l) * 3];
  return t;
}

const stepTotal = total;

/** Σ|IN − OUT| / Σ(IN + OUT) over every unit of a frame: the scale-free figure. */
function relative(f: MonitorFrame): number {
  let d = 0;
  let sum = 0;
  for (const l of f.layers) {
    for (let u = 0; u < l.in!.length; u++) {
      d += Math.abs(l.in![u] - l.out![u]);
      sum += l.in![u] + l.out![u];
    }
  }
  return d / sum;
}

describe('demo:train (shortened to 500 steps)', () => {
  const runs = new Map<string, Read>();
  let ms = 0;

  before(async () => {
    await tf.setBackend('cpu');
    const started = Date.now();
    const summaries = await runDemo(tf, { out, steps: 500, logEvery: 25 });
    ms = Date.now() - started;
    for (const s of summaries) runs.set(s.name, await read(s.file));
  });

  it('writes four schema-valid logs with a record every 25 steps', () => {
    assert.deepEqual([...runs.keys()], ['sgd', 'sgd-l2', 'balanced-large-lr', 'rebalanced-large-lr']);
    for (const name of runs.keys()) assert.equal(assertLogValid(join(out, `${name}.jsonl`)), 21);
    for (const r of runs.values()) {
      assert.deepEqual(r.series.layers, ['h1', 'h2']);
      assert.deepEqual(r.series.units, [48, 48]);
      assert.equal(r.series.steps.at(-1), 500);
    }
    console.log(`# demo, 4 × 500 steps: ${ms} ms`);
  });

  it('SGD with L2: the total deficit falls towards zero', () => {
    const r = runs.get('sgd-l2')!;
    const n = r.series.steps.length;
    assert.ok(total(r.series, n - 1) < 0.2 * total(r.series, 0), `${total(r.series, n - 1)} vs ${total(r.series, 0)}`);
    assert.ok(relative(r.last) < relative(r.first), 'the scale-free deficit falls too');
  });

  it('plain SGD: the deficit stays where it started', () => {
    const r = runs.get('sgd')!;
    const n = r.series.steps.length;
    assert.ok(total(r.series, 0) > 10, 'the initial network is out of balance');
    assert.ok(total(r.series, n - 1) > 0.5 * total(r.series, 0), `${total(r.series, n - 1)} vs ${total(r.series, 0)}`);
  });

  it('from a balanced start, a large learning rate without L2 loses the balance', () => {
    const r = runs.get('balanced-large-lr')!;
    assert.ok(relative(r.first) < 1e-4, `balanced start: ${relative(r.first)}`);
    assert.ok(relative(r.last) > 0.1, `after training: ${relative(r.last)}`);
  });

  it('rebalanced every 100 steps: balance events at 100 … 500 (the monitor\'s ticks), each restoring the balance the large step lost', () => {
    const r = runs.get('rebalanced-large-lr')!;
    const b = r.series.balance!;
    assert.deepEqual([...b.index].map((i) => r.series.steps[i]), [100, 200, 300, 400, 500]);
    for (let e = 0; e < b.index.length; e++) {
      const deltaR = b.values[e * BALANCE_FIELDS + BALANCE_DELTA_R];
      assert.ok(deltaR > 0, `event ${e}: ΔR ${deltaR}`);
      assert.ok(b.values[e * BALANCE_FIELDS + BALANCE_MAX_DEFICIT] <= 1e-6);
      // The step before the event had lost balance again; the event's record is balanced.
      const i = b.index[e];
      assert.ok(stepTotal(r.series, i) < 1e-3 * stepTotal(r.series, i - 1), `step ${r.series.steps[i]}: ${stepTotal(r.series, i)} after vs ${stepTotal(r.series, i - 1)} before`);
    }
    assert.ok(relative(r.last) < 1e-5, `balanced at the last step: ${relative(r.last)}`);
    assert.ok(relative(runs.get('balanced-large-lr')!.last) > 1e4 * relative(r.last));
    for (const name of ['sgd', 'sgd-l2', 'balanced-large-lr']) assert.equal(runs.get(name)!.series.balance, undefined, `${name} has no events`);
  });
});
