// Balance events in a balance log (the optional `balance` field a BalanceSchedule writes): parsed
// and checked like the rest of a record, carried by the run's series (whole and appended) to
// the webview as typed arrays, malformed ones reported with their line numbers.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseRecord } from '../../server/src/contract/balanceLog';
import { BALANCE_CONVERGED, BALANCE_DELTA_R, BALANCE_FIELDS, BALANCE_ITERATIONS, BALANCE_MAX_DEFICIT, BALANCE_R_AFTER, BALANCE_R_BEFORE } from '../../server/src/contract/monitor';
import { LogRun } from '../../client/src/monitor/runs/logRun';
import { Recorder, recordLine } from './monitorHelpers';
import { validateRecord } from './monitorSchema';

const dir = mkdtempSync(join(tmpdir(), 'synbal-balance-events-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `run${n++}.jsonl`);

const EVENT = { deltaR: 12.5, RBefore: 40, RAfter: 27.5, iterations: 9, maxDeficit: 3e-8, converged: true };

describe('balance events in a balance log', () => {
  it('parses the balance field; the schema and the reader agree on good and bad ones', () => {
    const rec = parseRecord(recordLine(5, { balance: EVENT }));
    assert.deepEqual(rec.balance, EVENT);
    assert.equal(parseRecord(recordLine(5)).balance, undefined);
    // Only deltaR is required; nulls are NaN; absent optionals are NaN / undefined.
    const minimal = parseRecord(recordLine(5, { balance: { deltaR: null } })).balance!;
    assert.ok(Number.isNaN(minimal.deltaR) && Number.isNaN(minimal.RBefore) && Number.isNaN(minimal.iterations));
    assert.equal(minimal.converged, undefined);
    assert.ok(validateRecord(JSON.parse(recordLine(5, { balance: EVENT }))));
    assert.ok(validateRecord(JSON.parse(recordLine(5, { balance: { deltaR: null } }))));
    const bad: [unknown, RegExp][] = [
      [{ RBefore: 1 }, /"balance" needs "deltaR"/],
      [[1, 2], /"balance" must be an object/],
      ['yes', /"balance" must be an object/],
      [{ deltaR: '3' }, /balance\.deltaR must be a number or null/],
      [{ deltaR: 1, RAfter: true }, /balance\.RAfter must be a number or null/],
      [{ deltaR: 1, iterations: 2.5 }, /balance\.iterations must be an integer ≥ 0/],
      [{ deltaR: 1, iterations: -1 }, /balance\.iterations must be an integer ≥ 0/],
      [{ deltaR: 1, converged: 1 }, /balance\.converged must be true or false/],
    ];
    for (const [b, re] of bad) {
      assert.throws(() => parseRecord(recordLine(5, { balance: b })), re, JSON.stringify(b));
      assert.equal(validateRecord(JSON.parse(recordLine(5, { balance: b }))), false, `schema rejects ${JSON.stringify(b)}`);
    }
  });

  it('carries events into the series (typed arrays, series indices) and into appends', async () => {
    const file = fresh();
    writeFileSync(file, recordLine(0, { balance: EVENT }) + recordLine(10) + recordLine(20) + recordLine(30, { balance: { ...EVENT, deltaR: 1.5, converged: false } }));
    const ev = new Recorder();
    const run = new LogRun(file, 'r', ev, { pollMs: 60_000 });
    await run.pollNow();
    const s = ev.of('series')[0].s;
    assert.ok(s.balance, 'the series carries its events');
    assert.ok(s.balance.index instanceof Float64Array && s.balance.values instanceof Float64Array);
    assert.deepEqual([...s.balance.index], [0, 3]);
    assert.equal(s.balance.values.length, 2 * BALANCE_FIELDS);
    const v = (e: number, k: number) => s.balance!.values[e * BALANCE_FIELDS + k];
    assert.deepEqual([v(0, BALANCE_DELTA_R), v(0, BALANCE_R_BEFORE), v(0, BALANCE_R_AFTER), v(0, BALANCE_ITERATIONS), v(0, BALANCE_MAX_DEFICIT), v(0, BALANCE_CONVERGED)], [12.5, 40, 27.5, 9, 3e-8, 1]);
    assert.deepEqual([v(1, BALANCE_DELTA_R), v(1, BALANCE_CONVERGED)], [1.5, 0]);
    // Appends carry only their own events, indexed from the series' start.
    appendFileSync(file, recordLine(40) + recordLine(50, { balance: { deltaR: 0.25 } }));
    await run.pollNow();
    appendFileSync(file, recordLine(60));
    await run.pollNow();
    const a = ev.of('append');
    assert.equal(a.length, 2);
    assert.deepEqual([...a[0].balance!.index], [5]);
    assert.equal(a[0].balance!.values[BALANCE_DELTA_R], 0.25);
    assert.ok(Number.isNaN(a[0].balance!.values[BALANCE_CONVERGED]));
    assert.equal(a[1].balance, undefined, 'no event, no balance field');
    assert.deepEqual([...run.snapshot().balance!.index], [0, 3, 5]);
    run.dispose();
  });

  it('a log without events sends no balance field; a truncated log forgets its events', async () => {
    const file = fresh();
    writeFileSync(file, recordLine(0) + recordLine(10));
    const ev = new Recorder();
    const run = new LogRun(file, 'r', ev, { pollMs: 60_000 });
    await run.pollNow();
    assert.equal(ev.of('series')[0].s.balance, undefined);
    writeFileSync(file, recordLine(0, { balance: EVENT }));
    await run.pollNow();
    writeFileSync(file, recordLine(0));
    await run.pollNow();
    assert.equal(run.snapshot().balance, undefined);
    run.dispose();
  });

  it('reports a malformed balance field with its line number, like any malformed line, and keeps the rest', async () => {
    const file = fresh();
    writeFileSync(file, recordLine(0) + recordLine(10, { balance: { deltaR: 'lots' } }) + recordLine(20, { balance: { RAfter: 1 } }) + recordLine(30, { balance: EVENT }));
    const ev = new Recorder();
    const run = new LogRun(file, 'r', ev, { pollMs: 60_000 });
    await run.pollNow();
    const warnings = ev.of('notice').filter((x) => x.level === 'warning').map((x) => x.message);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /run\d+\.jsonl:2: skipped: balance\.deltaR must be a number or null/);
    assert.match(warnings[1], /run\d+\.jsonl:3: skipped: "balance" needs "deltaR"/);
    const s = ev.of('series')[0].s;
    assert.deepEqual([...s.steps], [0, 30]);
    assert.deepEqual([...s.balance!.index], [1]);
    run.dispose();
  });
});
