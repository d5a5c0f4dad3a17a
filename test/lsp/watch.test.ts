// Checkpoints rewritten on disk, half-written files, removed files, and settings changes.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DiagnosticSeverity } from 'vscode-languageserver-protocol';
import { compile } from '../../server/src/engine/compile';
import { balance } from '../../server/src/engine/balance';
import { applyScales } from '../../server/src/engine/applyScales';
import { lp } from '../../server/src/engine/regularizer';
import { networkToJson, parseNetworkJson } from '../../server/src/formats/networkJson';
import { listingUriOf } from '../../server/src/contract/listing';
import { TestClient, fileUri, textOf } from './client';
import { exampleJson, makeWorkspace } from './workspace';

function balancedMlpJson(): string {
  const net = parseNetworkJson(exampleJson('mlp'), 'mlp.json');
  const problem = compile(net, lp(2));
  return networkToJson(applyScales(problem, balance(problem).x));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watching the workspace', () => {
  let c: TestClient;
  let root: string;
  const uri = (rel: string) => fileUri(join(root, rel));
  const analysing = (rel: string, since: number) => c.listingChanges.slice(since).filter((p) => p.fileUri === uri(rel) && p.state === 'analysing').length;

  before(async () => {
    root = makeWorkspace({ 'run/epoch.json': balancedMlpJson(), 'other.json': exampleJson('mlp') });
    // A longer settle time than the other suites: a rewrite in several writes must be seen as one.
    c = await TestClient.start({ root, settings: { settleMs: 600 } });
    await c.settled(uri('run/epoch.json'));
    await c.settled(uri('other.json'));
  });
  after(() => c.stop());

  it('analyses a checkpoint rewritten on disk once, after its size and time have settled', async () => {
    assert.deepEqual(c.diagnostics.get(uri('run/epoch.json')), [], 'balanced to start with');
    const since = c.listingChanges.length;
    const text = exampleJson('mlp');
    // A training run saving an epoch: the file grows in a few writes, then stays still.
    const parts = [text.slice(0, 2000), text.slice(0, 6000), text];
    for (const p of parts) {
      writeFileSync(join(root, 'run/epoch.json'), p);
      await sleep(60);
    }
    await c.waitFor('the rewritten checkpoint to be reported', () => c.diagnostics.get(uri('run/epoch.json'))?.[0]?.code === 'checkpoint-unbalanced');
    assert.equal(analysing('run/epoch.json', since), 1, 'the partial writes were not read');
  });

  it('reports a half-written file, and analyses it again once it is complete', async () => {
    const text = exampleJson('mlp');
    writeFileSync(join(root, 'run/epoch.json'), text.slice(0, text.length / 2));
    await c.waitFor('a diagnostic for the half-written file', () => c.diagnostics.get(uri('run/epoch.json'))?.[0]?.code === 'unreadable');
    assert.match(textOf(c.diagnostics.get(uri('run/epoch.json'))![0].message), /not valid JSON/);
    writeFileSync(join(root, 'run/epoch.json'), balancedMlpJson());
    await c.waitFor('the complete file to be analysed', () => c.diagnostics.get(uri('run/epoch.json'))?.length === 0);
    assert.equal((await c.listing(uri('run/epoch.json'))).state, 'analysed');
  });

  it('re-publishes on a tolerance or severity change, and re-analyses on a regularizer change', async () => {
    const since = c.listingChanges.length;
    c.settings = { ...c.settings, tolerance: 0.7, severity: 'error' };
    await c.conn.sendNotification('workspace/didChangeConfiguration', { settings: null });
    const listing = listingUriOf(uri('other.json'));
    await c.waitFor('diagnostics under the new tolerance', () => {
      const ds = c.diagnostics.get(listing);
      return ds && ds.length > 0 && ds.every((d) => d.severity === DiagnosticSeverity.Error) && ds.filter((d) => d.code === 'unit-unbalanced').length === 4;
    });
    assert.equal(analysing('other.json', since), 0, 'the analysis is reused');
    assert.match((await c.listing(listing)).text, /tolerance 0\.7 on/);

    const before2 = c.listingChanges.length;
    c.settings = { ...c.settings, regularizerP: 1, tolerance: 1e-3, severity: 'warning' };
    await c.conn.sendNotification('workspace/didChangeConfiguration', { settings: null });
    await c.waitFor('a new analysis to finish', () => {
      const states = c.listingChanges.slice(before2).filter((p) => p.fileUri === uri('other.json')).map((p) => p.state);
      const k = states.lastIndexOf('analysing');
      return k >= 0 && states.slice(k).includes('analysed');
    });
    assert.match((await c.listing(listing)).text, /^regularizer {2}L1;/m);
  });

  it('clears the diagnostics of a removed checkpoint', async () => {
    assert.ok(c.diagnostics.get(uri('other.json'))!.length > 0);
    rmSync(join(root, 'other.json'));
    await c.waitFor('the listing to be gone', () => c.listingChanges.filter((p) => p.fileUri === uri('other.json')).at(-1)!.state === 'removed');
    assert.deepEqual(c.diagnostics.get(uri('other.json')), []);
    assert.deepEqual(c.diagnostics.get(listingUriOf(uri('other.json'))), []);
  });
});
