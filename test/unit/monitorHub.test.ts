// The monitor panel's host side (client/src/monitor/runHub.ts) with real log files: what the
// webview is sent before and after it says `ready`, frames answered with the latest request
// winning, runs added and removed, a reloaded page getting the whole series again.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RunHub } from '../../client/src/monitor/runHub';
import type { MonitorHostMessage } from '../../server/src/contract/monitor';
import { costsAt } from './monitorHelpers';

const dir = mkdtempSync(join(tmpdir(), 'synbal-hub-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function line(step: number, layers = 2, units = 5): string {
  return `${JSON.stringify({
    v: 1,
    run: 'hub-test',
    step,
    time: 1_700_000_000 + step,
    p: 2,
    layers: Array.from({ length: layers }, (_, l) => ({ name: `h${l + 1}`, ...costsAt(step, l, units) })),
  })}\n`;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('monitor run hub', () => {
  it('sends nothing before ready, then the runs and each whole series; appends follow live', async () => {
    const log = join(dir, 'a.jsonl');
    writeFileSync(log, line(0) + line(10) + line(20));
    const sent: MonitorHostMessage[] = [];
    const hub = new RunHub({ post: (m) => sent.push(m), costsOf: () => Promise.reject(new Error('no checkpoints here')), pollMs: 20 });
    try {
      const id = hub.add(RunHub.specOf(log));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(sent.length, 0, 'the page is not listening yet');
      await hub.handle({ type: 'ready' });
      assert.deepEqual(sent[0], { type: 'runs', runs: hub.infos });
      await until('the series', () => sent.some((m) => m.type === 'series' && m.series.steps.length === 3));
      const series = sent.find((m) => m.type === 'series' && m.series.steps.length === 3)!;
      assert.ok(series.type === 'series' && series.series.runId === id && series.series.layers.join() === 'h1,h2');
      appendFileSync(log, line(30));
      await until('an append', () => sent.some((m) => m.type === 'seriesAppend' && [...m.steps].includes(30)));
    } finally {
      hub.dispose();
    }
  });

  it('answers frame requests; a newer request for the same run wins', async () => {
    const log = join(dir, 'b.jsonl');
    writeFileSync(log, [0, 1, 2, 3, 4].map((s) => line(s * 10, 3, 7)).join(''));
    const sent: MonitorHostMessage[] = [];
    const hub = new RunHub({ post: (m) => sent.push(m), costsOf: () => Promise.reject(new Error('none')), pollMs: 20 });
    try {
      const id = hub.add(RunHub.specOf(log));
      await hub.handle({ type: 'ready' });
      await until('the series', () => sent.some((m) => m.type === 'series' && m.series.steps.length === 5));
      await Promise.all([hub.handle({ type: 'requestFrame', runId: id, index: 1 }), hub.handle({ type: 'requestFrame', runId: id, index: 3 })]);
      const frames = sent.filter((m): m is Extract<MonitorHostMessage, { type: 'frame' }> => m.type === 'frame');
      assert.deepEqual(frames.map((f) => f.frame.index), [3], 'the stale answer (index 1) is dropped');
      const f = frames[0].frame;
      assert.equal(f.step, 30);
      assert.equal(f.layers.length, 3);
      const c = costsAt(30, 0, 7);
      const expected = Math.abs(c.in[2] - c.out[2]) / (c.in[2] + c.out[2]);
      assert.ok(Math.abs(f.layers[0].relativeDeficit[2] - expected) < 1e-6);
      await hub.handle({ type: 'requestFrame', runId: id, index: 99 });
      const notice = sent.at(-1)!;
      assert.ok(notice.type === 'notice' && notice.level === 'error' && notice.message.includes('b.jsonl'), JSON.stringify(notice));
    } finally {
      hub.dispose();
    }
  });

  it('a reloaded page gets the runs and whole series again; removed runs stop', async () => {
    const log = join(dir, 'c.jsonl');
    writeFileSync(log, line(0) + line(1));
    const sent: MonitorHostMessage[] = [];
    const hub = new RunHub({ post: (m) => sent.push(m), costsOf: () => Promise.reject(new Error('none')), pollMs: 20 });
    try {
      const id = hub.add(RunHub.specOf(log));
      assert.equal(hub.add(RunHub.specOf(log)), id, 'the same source is not added twice');
      await hub.handle({ type: 'ready' });
      await until('the series', () => sent.some((m) => m.type === 'series' && m.series.steps.length === 2));
      sent.length = 0;
      await hub.handle({ type: 'ready' });
      assert.equal(sent[0].type, 'runs');
      assert.ok(sent.some((m) => m.type === 'series' && m.series.steps.length === 2));
      assert.deepEqual(hub.specs(), [{ kind: 'log', source: `file://${log}` }]);
      assert.deepEqual(RunHub.specOf(join(dir, 'not-written-yet.jsonl')), { kind: 'log', source: `file://${join(dir, 'not-written-yet.jsonl')}` }, 'a log the training has not created yet');
      assert.equal(RunHub.specOf(dir).kind, 'checkpoints');
      await hub.handle({ type: 'removeRun', runId: id });
      assert.deepEqual(sent.at(-1), { type: 'runs', runs: [] });
      sent.length = 0;
      appendFileSync(log, line(2));
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(sent.length, 0, 'a removed run is no longer polled');
    } finally {
      hub.dispose();
    }
  });

  it('a log created empty (a training about to start) is sent whole once its layers are known, never as appends in an unknown layout', async () => {
    const log = join(dir, 'late.jsonl');
    const sent: MonitorHostMessage[] = [];
    const hub = new RunHub({ post: (m) => sent.push(m), costsOf: () => Promise.reject(new Error('none')), pollMs: 20 });
    try {
      hub.add(RunHub.specOf(log));
      await hub.handle({ type: 'ready' });
      await new Promise((r) => setTimeout(r, 100));
      writeFileSync(log, '');
      await new Promise((r) => setTimeout(r, 100));
      appendFileSync(log, line(0) + line(1));
      await until('the first records', () => sent.some((m) => m.type === 'series' && m.series.steps.length === 2));
      appendFileSync(log, line(2));
      await until('an append', () => sent.some((m) => m.type === 'seriesAppend'));
      // Replay what the webview holds: every append must match the layout of the last series.
      let layers = -1;
      for (const m of sent) {
        if (m.type === 'series') layers = m.series.layers.length;
        if (m.type === 'seriesAppend') assert.equal(m.values.length, m.steps.length * layers * 3, 'append values in the layout of the last series');
      }
      assert.equal(layers, 2);
    } finally {
      hub.dispose();
    }
  });
});
