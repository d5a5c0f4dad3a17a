// A checkpoint-folder run: settling, ordering by the step in the file name, failures as
// notices, frames that name their checkpoint. costsOf is a stand-in for the server request
// (test/lsp/checkpointCosts.test.ts covers the real one).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { stepNumberOf } from '../../client/src/monitor/runs/checkpointOrder';
import { CheckpointRun } from '../../client/src/monitor/runs/checkpointRun';
import { float32Base64 } from '../../server/src/contract/balanceLog';
import { SettledFiles } from '../../client/src/monitor/runs/settledFiles';
import type { CheckpointCostsResult } from '../../server/src/contract/requests';
import { Recorder } from './monitorHelpers';

const root = mkdtempSync(join(tmpdir(), 'synbal-ckrun-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** IN grows with the step in the name, OUT stays: deficits the test can predict. */
function fakeCosts(calls: string[]) {
  return async (file: string): Promise<CheckpointCostsResult> => {
    calls.push(file);
    if (file.includes('broken')) throw new Error(`${file}: not a model`);
    const s = stepNumberOf(file) ?? 0;
    return {
      fileUri: pathToFileURL(file).href,
      regularizerP: 2,
      layers: [{ name: 'h1', in: float32Base64([1 + s, 2]), out: float32Base64([1, 2]), weightNorm: s }],
    };
  };
}

describe('checkpoint folder run', () => {
  it('finds step numbers in file names', () => {
    assert.equal(stepNumberOf('/x/ckpt_step_1200.pt'), 1200);
    assert.equal(stepNumberOf('/x/epoch=3-step=40.ckpt'), 40);
    assert.equal(stepNumberOf('/x/model2/last.pt'), undefined);
  });

  it('waits until a file has been still for settleMs', () => {
    const s = new SettledFiles(100);
    const a = { file: 'a', size: 1, mtimeMs: 5 };
    assert.deepEqual(s.update([a], 0), []);
    assert.deepEqual(s.update([{ ...a, size: 2 }], 50), [], 'changed: the clock restarts');
    assert.deepEqual(s.update([{ ...a, size: 2 }], 120), []);
    assert.deepEqual(s.update([{ ...a, size: 2 }], 151), [{ ...a, size: 2 }]);
    assert.deepEqual(s.update([{ ...a, size: 2 }], 400), [], 'handed out once');
  });

  it('makes each settled checkpoint a step in step order; failures are notices; frames name the file', async () => {
    const dir = mkdtempSync(join(root, 'run-'));
    for (const f of ['ckpt_20.pt', 'ckpt_3.pt', 'broken_7.pt', 'notes.txt']) writeFileSync(join(dir, f), 'x');
    const calls: string[] = [];
    const ev = new Recorder();
    const run = new CheckpointRun(dir, 'r', ev, fakeCosts(calls), { pollMs: 60_000, settleMs: 0 });
    await run.pollNow();
    assert.deepEqual(calls.map((f) => basename(f)), ['ckpt_3.pt', 'broken_7.pt', 'ckpt_20.pt']);
    assert.deepEqual(ev.steps(), [3, 20]);
    const errors = ev.of('notice').filter((n) => n.level === 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /broken_7\.pt: .*not a model/);
    const s = ev.of('series')[0].s;
    assert.deepEqual(s.layers, ['h1']);
    // Step 3: IN [4, 2], OUT [1, 2]; step 20: IN [21, 2], OUT [1, 2]. Per step: Σ|IN − OUT|, Σ(IN + OUT)/2, ‖W‖.
    assert.deepEqual([...s.values], [3, 4.5, 3, 20, 13, 20]);
    const f = await run.frame(1);
    assert.equal(f.checkpoint, pathToFileURL(join(dir, 'ckpt_20.pt')).href);
    assert.equal(f.step, 20);
    assert.deepEqual([...f.layers[0].relativeDeficit], [Math.fround(20 / 22), 0]);
    assert.equal(calls.length, 3, 'the frame came from the cache');

    writeFileSync(join(dir, 'ckpt_40.pt'), 'x');
    await run.pollNow();
    assert.deepEqual([...ev.of('append')[0].steps], [40]);
    // Saved late, sorts first: the series is rebuilt in order.
    writeFileSync(join(dir, 'ckpt_10.pt'), 'x');
    await run.pollNow();
    assert.deepEqual(ev.steps(), [3, 10, 20, 40]);
    assert.equal(ev.kinds().filter((k) => k === 'reset').length, 1);
    assert.equal((await run.frame(1)).checkpoint, pathToFileURL(join(dir, 'ckpt_10.pt')).href);
    await assert.rejects(run.frame(4), (e: Error) => e.message.includes(dir));
    run.dispose();
  });

  it('orders files without numbers by modification time', async () => {
    const dir = mkdtempSync(join(root, 'run-'));
    writeFileSync(join(dir, 'b.onnx'), 'x');
    writeFileSync(join(dir, 'a.onnx'), 'x');
    utimesSync(join(dir, 'b.onnx'), 1000, 1000);
    utimesSync(join(dir, 'a.onnx'), 2000, 2000);
    const calls: string[] = [];
    const ev = new Recorder();
    const run = new CheckpointRun(dir, 'r', ev, fakeCosts(calls), { pollMs: 60_000, settleMs: 0 });
    await run.pollNow();
    assert.deepEqual(calls.map((f) => basename(f)), ['b.onnx', 'a.onnx']);
    assert.deepEqual([...ev.of('series')[0].s.times], [1000, 2000]);
    run.dispose();
  });
});
