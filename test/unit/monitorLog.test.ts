// The balance-log reader: tailing by byte offset, partial lines, truncation, rotation,
// malformed lines, base64 arrays, layers that appear later, and frames read from their bytes.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { nodeTailFs, type TailFs } from '../../client/src/monitor/runs/fileTail';
import { float32Base64, parseRecord } from '../../server/src/contract/balanceLog';
import { LogRun } from '../../client/src/monitor/runs/logRun';
import { openLogRun } from '../../client/src/monitor/runs/runSource';
import { Recorder, costsAt, recordLine } from './monitorHelpers';

const dir = mkdtempSync(join(tmpdir(), 'synbal-monitor-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `run${n++}.jsonl`);

function open(file: string, fs?: TailFs): { run: LogRun; ev: Recorder } {
  const ev = new Recorder();
  const run = new LogRun(file, `id:${file}`, ev, { pollMs: 60_000, fs });
  return { run, ev };
}

describe('balance log reader', () => {
  it('emits the whole series after the first read, then appends; values follow the MonitorSeries layout', async () => {
    const file = fresh();
    writeFileSync(file, recordLine(0) + recordLine(10));
    const { run, ev } = open(file);
    await run.pollNow();
    assert.deepEqual(ev.kinds().filter((k) => k !== 'notice'), ['label', 'series']);
    const s = ev.of('series')[0].s;
    assert.deepEqual(s.layers, ['fc1', 'fc2']);
    assert.deepEqual(s.units, [4, 4]);
    assert.deepEqual([...s.steps], [0, 10]);
    assert.deepEqual([...s.times], [1_700_000_000, 1_700_000_010]);
    assert.equal(s.values.length, 2 * 2 * 3);
    const c = costsAt(10, 1, 4);
    const total = c.in.reduce((a, v, u) => a + Math.abs(v - c.out[u]), 0);
    const R = c.in.reduce((a, v, u) => a + (v + c.out[u]) / 2, 0);
    assert.ok(Math.abs(s.values[(1 * 2 + 1) * 3 + 0] - total) < 1e-12);
    assert.ok(Math.abs(s.values[(1 * 2 + 1) * 3 + 1] - R) < 1e-12);
    assert.equal(s.values[(1 * 2 + 1) * 3 + 2], 2);
    assert.equal(run.info.label, 'test run');
    appendFileSync(file, recordLine(20));
    await run.pollNow();
    const a = ev.of('append');
    assert.equal(a.length, 1);
    assert.deepEqual([...a[0].steps], [20]);
    assert.equal(a[0].values.length, 6);
    assert.equal(run.length, 3);
    assert.deepEqual([...run.snapshot().steps], [0, 10, 20]);
    assert.deepEqual(run.snapshot().values.length, 3 * 2 * 3);
    await run.pollNow();
    assert.equal(ev.of('append').length, 1, 'nothing new, nothing sent');
    run.dispose();
  });

  it('holds a half-written line until its newline arrives', async () => {
    const file = fresh();
    const line = recordLine(5);
    writeFileSync(file, recordLine(0) + line.slice(0, 40));
    const { run, ev } = open(file);
    await run.pollNow();
    assert.deepEqual(ev.steps(), [0]);
    appendFileSync(file, line.slice(40, line.length - 1));
    await run.pollNow();
    assert.deepEqual(ev.steps(), [0]);
    assert.equal(ev.of('notice').filter((x) => x.level !== 'info').length, 0);
    appendFileSync(file, '\n');
    await run.pollNow();
    assert.deepEqual(ev.steps(), [0, 5]);
    const f = await run.frame(1);
    assert.equal(f.step, 5);
    run.dispose();
  });

  it('starts over when the file is truncated', async () => {
    const file = fresh();
    writeFileSync(file, recordLine(0) + recordLine(1) + recordLine(2));
    const { run, ev } = open(file);
    await run.pollNow();
    truncateSync(file, 0);
    appendFileSync(file, recordLine(100));
    await run.pollNow();
    assert.deepEqual(ev.kinds().filter((k) => k !== 'notice' && k !== 'label'), ['series', 'reset', 'series']);
    assert.deepEqual(ev.steps(), [100]);
    assert.equal((await run.frame(0)).step, 100);
    await assert.rejects(run.frame(1), (e: Error) => e.message.includes(file));
    run.dispose();
  });

  it('starts over when the file is rotated (renamed away, a new one in its place)', async () => {
    const file = fresh();
    writeFileSync(file, recordLine(0) + recordLine(1) + recordLine(2) + recordLine(3));
    const { run, ev } = open(file);
    await run.pollNow();
    renameSync(file, `${file}.1`);
    // Longer than the old file: a size check alone would miss the rotation.
    writeFileSync(file, [7, 8, 9, 10, 11].map((s) => recordLine(s, { run: 'second' })).join(''));
    await run.pollNow();
    assert.ok(ev.kinds().includes('reset'));
    assert.deepEqual(ev.steps(), [7, 8, 9, 10, 11]);
    assert.equal(run.info.label, 'second');
    assert.equal((await run.frame(4)).step, 11);
    run.dispose();
  });

  it('reports malformed lines with their numbers and skips only them', async () => {
    const file = fresh();
    const bad = [
      'not json at all',
      JSON.stringify({ v: 1, step: 3, time: 1, layers: [{ name: 'fc1', in: [1, 2] }] }),
      JSON.stringify({ v: 2, step: 4, time: 1, layers: [] }),
      '{"v":1,"step":5,"time":1,"layers":[{"name":"fc1","in":[1],"out":["x"]}]}',
    ];
    writeFileSync(file, [recordLine(1), bad[0], recordLine(2), bad[1], bad[2], '', recordLine(6), bad[3], recordLine(7)].map((l) => l.replace(/\n$/, '')).join('\n') + '\n');
    const { run, ev } = open(file);
    await run.pollNow();
    assert.deepEqual(ev.steps(), [1, 2, 6, 7]);
    const warnings = ev.of('notice').filter((x) => x.level === 'warning').map((x) => x.message);
    assert.equal(warnings.length, 4);
    for (const [k, line] of [2, 4, 5, 8].entries()) assert.ok(warnings[k].startsWith(`${file}:${line}: `), warnings[k]);
    assert.match(warnings[1], /"in" and "out" come together/);
    assert.match(warnings[2], /version 2/);
    for (let i = 0; i < 4; i++) assert.equal((await run.frame(i)).step, [1, 2, 6, 7][i]);
    run.dispose();
  });

  it('a file that is not a balance log gives ten notices and one summary, not one per line', async () => {
    const file = fresh();
    writeFileSync(file, Array.from({ length: 500 }, (_, i) => `binary junk ${i}`).join('\n') + '\n' + recordLine(1));
    const { run, ev } = open(file);
    await run.pollNow();
    const warnings = ev.of('notice').filter((x) => x.level === 'warning').map((x) => x.message);
    assert.equal(warnings.length, 11);
    assert.match(warnings[10], /more malformed lines \(from line 11\) are skipped without a notice each; no line so far is a balance-log record/);
    assert.deepEqual(ev.steps(), [1], 'a record after the junk is still read');
    run.dispose();
  });

  it('decodes base64 float32 arrays and computes relative deficits in float64', async () => {
    const file = fresh();
    const inC = [3, 1e-30, 0, 2.5, 1];
    const outC = [1, 1e-30, 0, 2.5, 7];
    const rec = { v: 1, step: 1, time: 2, layers: [{ name: 'conv', in: { dtype: 'float32', b64: float32Base64(inC) }, out: { dtype: 'float32', b64: float32Base64(outC) } }, { name: 'onlyDeficit', deficit: [0.5, null, 0.25] }] };
    writeFileSync(file, JSON.stringify(rec) + '\r\n');
    const { run, ev } = open(file);
    await run.pollNow();
    const f = await run.frame(0);
    assert.deepEqual([...f.layers[0].in!], inC.map(Math.fround));
    assert.deepEqual([...f.layers[0].out!], outC.map(Math.fround));
    const rel = [...f.layers[0].relativeDeficit];
    assert.equal(rel[0], Math.fround(0.5));
    assert.equal(rel[1], 0, 'tiny but equal costs are balanced (float64, no underflow to NaN)');
    assert.ok(Number.isNaN(rel[2]), 'dead unit: NaN');
    assert.equal(rel[4], Math.fround(0.75));
    assert.ok(f.layers[1].in === undefined);
    assert.ok(Number.isNaN(f.layers[1].relativeDeficit[1]));
    const s = ev.of('series')[0].s;
    assert.equal(s.values[0], 2 + 6, 'Σ|IN − OUT|');
    assert.ok(Number.isNaN(s.values[2]), 'no weightNorm logged');
    assert.equal(s.values[3], 0.75, 'deficit-only layer: Σ relative deficits');
    run.dispose();
  });

  it('handles layers that first appear later: the series is re-sent with NaN before', async () => {
    const file = fresh();
    writeFileSync(file, recordLine(0, { layers: ['a'] }) + recordLine(1, { layers: ['a'] }));
    const { run, ev } = open(file);
    await run.pollNow();
    appendFileSync(file, recordLine(2, { layers: ['a', 'b'], units: 6 }) + recordLine(3, { layers: ['b'] }));
    await run.pollNow();
    const last = ev.of('series').at(-1)!.s;
    assert.equal(ev.kinds().filter((k) => k === 'reset').length, 1);
    assert.deepEqual(last.layers, ['a', 'b']);
    assert.deepEqual([...last.steps], [0, 1, 2, 3]);
    assert.ok(Number.isNaN(last.values[(0 * 2 + 1) * 3]) && Number.isNaN(last.values[(1 * 2 + 1) * 3]));
    assert.ok(last.values[(2 * 2 + 1) * 3] > 0 && last.values[(3 * 2 + 1) * 3] > 0);
    assert.ok(Number.isNaN(last.values[(3 * 2 + 0) * 3]), 'layer a missing at step 3');
    assert.deepEqual(last.units, [6, 6], 'unit counts grow to the largest seen');
    assert.ok(ev.of('notice').some((x) => x.message.includes('layer(s) b first logged at step 2')));
    run.dispose();
  });

  it('reads a frame from its byte range only, on a 2,000-step log', async () => {
    const file = fresh();
    const lines: string[] = [];
    for (let s = 0; s < 2000; s++) lines.push(recordLine(s * 10, { layers: ['fc1', 'fc2', 'fc3'], units: 64 }));
    writeFileSync(file, lines.join(''));
    const size = Buffer.byteLength(lines.join(''));
    let bytesRead = 0;
    let reads = 0;
    const counting: TailFs = {
      stat: nodeTailFs.stat,
      async open(path) {
        const h = await nodeTailFs.open(path);
        return {
          ...h,
          read: async (buf, pos) => {
            const k = await h.read(buf, pos);
            bytesRead += k;
            reads++;
            return k;
          },
        };
      },
    };
    const { run, ev } = open(file, counting);
    await run.pollNow();
    assert.equal(bytesRead, size, 'each byte read once');
    assert.equal(run.length, 2000);
    await run.pollNow();
    assert.equal(bytesRead, size, 'an unchanged file is not read again');
    bytesRead = 0;
    reads = 0;
    const f = await run.frame(1234);
    assert.equal(bytesRead, Buffer.byteLength(lines[1234]) - 1, 'exactly the line, newline excluded');
    assert.equal(reads, 1);
    assert.equal(f.step, 12340);
    assert.equal(f.index, 1234);
    const c = costsAt(12340, 2, 64);
    assert.deepEqual([...f.layers[2].in!], c.in.map(Math.fround));
    assert.equal(ev.of('series')[0].s.steps.length, 2000);
    run.dispose();
  });

  it('waits for a file that does not exist yet, and rejects bad frame indices naming the file', async () => {
    const file = fresh();
    const ev = new Recorder();
    const run = openLogRun(file, 'x', ev, { pollMs: 20 });
    run.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(ev.steps(), []);
    assert.ok(ev.of('notice').some((x) => x.message.includes('does not exist yet')));
    writeFileSync(file, recordLine(3));
    for (let i = 0; i < 100 && run.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(ev.steps(), [3]);
    await assert.rejects(run.frame(-1), (e: Error) => e.message.includes(file));
    await assert.rejects(run.frame(1.5), (e: Error) => e.message.includes(file));
    run.dispose();
  });
});

describe('balance log schema', () => {
  it('accepts what the reader accepts and rejects what it reports', async () => {
    const { validateRecord } = await import('./monitorSchema');
    assert.ok(validateRecord(JSON.parse(recordLine(3))));
    // The example in server/loggers/README.md.
    const readme = readFileSync(join(__dirname, '..', '..', 'server', 'loggers', 'README.md'), 'utf8');
    const example = readme.slice(readme.indexOf('```json') + 7, readme.indexOf('```', readme.indexOf('```json') + 7)).replace(/\n\s*/g, '');
    assert.ok(validateRecord(JSON.parse(example)), example);
    assert.deepEqual(parseRecord(example).layers.map((l) => [...(l.in ?? l.deficit!)]), [[0.52, 0.48], [1, 2], [0.05, 0.31, NaN]]);
    assert.ok(validateRecord({ v: 1, step: 1, time: 2, layers: [{ name: 'a', deficit: { dtype: 'float32', b64: float32Base64([0.5]) } }] }));
    assert.ok(validateRecord({ v: 1, step: 1, time: 2, layers: [{ name: 'a', in: [1, null], out: [2, 3], weightNorm: null }], loss: 0.3 }));
    assert.ok(!validateRecord({ v: 2, step: 1, time: 2, layers: [] }), 'version');
    assert.ok(!validateRecord({ v: 1, time: 2, layers: [] }), 'no step');
    assert.ok(!validateRecord({ v: 1, step: 1, time: 2, layers: [{ name: 'a', in: [1] }] }), 'in without out');
    assert.ok(!validateRecord({ v: 1, step: 1, time: 2, layers: [{ name: 'a', in: { dtype: 'int8', b64: 'AA==' }, out: [1] }] }), 'dtype');
    assert.ok(!validateRecord({ v: 1, step: 1, time: 2, p: 0, layers: [] }), 'p > 0');
  });
});
