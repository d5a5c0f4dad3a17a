// Running the quick fixes: each writes a balanced checkpoint that reads back, computes the same
// function, is analysed again (its diagnostics gone) and is shown; cancelling leaves nothing.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CancellationTokenSource, DiagnosticSeverity, type CodeAction, type Diagnostic } from 'vscode-languageserver-protocol';
import { analyze } from '../../server/src/engine/analyze';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { compareFunctions } from '../../server/src/engine/verify';
import { parseNetworkJson } from '../../server/src/formats/networkJson';
import { type LayerUnbalancedData, type UnitUnbalancedData } from '../../server/src/contract/diagnostics';
import { listingUriOf } from '../../server/src/contract/listing';
import { Commands, type BalanceArgs, type BalanceResult, type BalanceScope } from '../../server/src/contract/requests';
import { TestClient, fileUri } from './client';
import { exampleJson, makeWorkspace } from './workspace';
import { scratchDir } from '../support/scratch';

describe('quick fixes', () => {
  let c: TestClient;
  let root: string;
  const path = (rel: string) => join(root, rel);
  const uri = (rel: string) => fileUri(path(rel));

  before(async () => {
    root = makeWorkspace({ 'mlp.json': exampleJson('mlp'), 'ae.json': exampleJson('autoencoder'), 'ae2.json': exampleJson('autoencoder'), 'inplace.json': exampleJson('mlp') });
    c = await TestClient.start({ root });
    for (const f of ['mlp.json', 'ae.json', 'ae2.json', 'inplace.json']) await c.settled(uri(f));
  });
  after(() => c.stop());

  const run = (args: BalanceArgs, source?: CancellationTokenSource, workDoneToken?: string): Promise<BalanceResult> => {
    const params = { command: Commands.balance, arguments: [args], workDoneToken };
    return source ? c.conn.sendRequest('workspace/executeCommand', params, source.token) : c.conn.sendRequest('workspace/executeCommand', params);
  };

  /** The written file, read back independently, computes what the original computes. */
  function assertSameFunction(original: string, written: string): void {
    const a = parseNetworkJson(readFileSync(original, 'utf8'), original);
    const b = parseNetworkJson(readFileSync(written, 'utf8'), written);
    assert.ok(compareFunctions(a, b).maxRelative < 1e-9);
  }

  async function fix(scope: BalanceScope): Promise<{ r: BalanceResult; listing: Diagnostic[] }> {
    const shownBefore = c.shown.length;
    const r = await run({ file: uri('mlp.json'), scope });
    assert.equal(r.cancelled, false);
    assert.equal(r.output, uri('mlp.balanced.json'));
    assert.equal(r.listingUri, listingUriOf(uri('mlp.balanced.json')));
    assert.ok(existsSync(path('mlp.balanced.json')));
    assert.ok(r.verification!.maxRelative < 1e-9 && r.writtenVerification!.maxRelative < 1e-9);
    assertSameFunction(path('mlp.json'), path('mlp.balanced.json'));
    await c.waitFor('the result listing to be shown', () => c.shown.length > shownBefore);
    assert.equal(c.shown.at(-1), r.listingUri);
    // Diagnostics are published before the command answers.
    return { r, listing: c.diagnostics.get(r.listingUri!)! };
  }

  it('balance this unit: that unit is balanced, R falls by the predicted ΔR', async () => {
    const { r, listing } = await fix({ kind: 'unit', layer: 'h1', index: 9 });
    assert.ok(Math.abs(r.RBefore! - r.RAfter! - 0.980987) < 1e-5);
    const units = listing.filter((d) => d.code === 'unit-unbalanced').map((d) => d.data as UnitUnbalancedData);
    assert.ok(!units.some((u) => u.layer === 'h1' && u.unit === 9));
    assert.ok(units.some((u) => u.layer === 'h1'), 'the other units of h1 are not touched');
    assert.match(c.messages.at(-1)!.message, /^Balanced mlp\.json \(unit:h1#9\): R 121\.086 → 120\.105; outputs agree to .* \(relative\); wrote mlp\.balanced\.json$/);
  });

  it('balance this layer (each unit): the layer has no diagnostics left', async () => {
    const { r, listing } = await fix({ kind: 'layer', layer: 'h1' });
    assert.ok(Math.abs(r.RBefore! - r.RAfter! - 6.05095) < 1e-4);
    assert.ok(!listing.some((d) => (d.data as { layer?: string }).layer === 'h1'));
    assert.ok(listing.some((d) => (d.data as { layer?: string }).layer === 'h2'));
  });

  it('balance this layer (tied): one λ balances the layer totals', async () => {
    const { r } = await fix({ kind: 'layer', layer: 'h1', tied: true });
    assert.ok(Math.abs(r.RBefore! - r.RAfter! - 2.78379) < 1e-4);
    const text = (await c.listing(r.listingUri!)).text;
    const m = /^layer h1 .* IN (\S+) {2}OUT (\S+) /m.exec(text)!;
    assert.ok(Math.abs(Number(m[1]) - Number(m[2])) < 1e-4, `h1 totals ${m[1]} vs ${m[2]}`);
  });

  it('balance the whole network: every out-of-balance diagnostic is gone', async () => {
    const { r, listing } = await fix({ kind: 'network' });
    assert.ok(r.converged && r.maxRelativeDeficitAfter! < 1e-7);
    assert.ok(Math.abs(r.RAfter! - 104.03) < 1e-2);
    assert.equal(listing.filter((d) => d.severity !== DiagnosticSeverity.Information).length, 0);
    assert.deepEqual(c.diagnostics.get(uri('mlp.balanced.json')), []);
  });

  it('runs the fix-all source action and a resolved quick fix through their commands', async () => {
    const listing = listingUriOf(uri('mlp.json'));
    const ds = c.diagnostics.get(listing)!;
    const layer = ds.find((d) => d.code === 'layer-unbalanced' && (d.data as LayerUnbalancedData).layer === 'h2')!;
    const [fixAll] = (await c.conn.sendRequest('textDocument/codeAction', { textDocument: { uri: listing }, range: layer.range, context: { diagnostics: [], only: ['source.fixAll'] } })) as CodeAction[];
    const resolvedAll = (await c.conn.sendRequest('codeAction/resolve', fixAll)) as CodeAction;
    const r1 = (await c.conn.sendRequest('workspace/executeCommand', { command: resolvedAll.command!.command, arguments: resolvedAll.command!.arguments })) as BalanceResult;
    assert.ok(r1.maxRelativeDeficitAfter! < 1e-7);
    const quick = (await c.conn.sendRequest('textDocument/codeAction', { textDocument: { uri: listing }, range: layer.range, context: { diagnostics: [layer] } })) as CodeAction[];
    assert.deepEqual(quick.map((a) => a.title.replace(/ \(.*$/, '')), ['Balance layer h2, each unit', 'Balance layer h2 with one shared λ', 'Balance the whole network']);
    const resolved = (await c.conn.sendRequest('codeAction/resolve', quick[0])) as CodeAction;
    const r2 = (await c.conn.sendRequest('workspace/executeCommand', { command: resolved.command!.command, arguments: resolved.command!.arguments })) as BalanceResult;
    assert.ok(!c.diagnostics.get(r2.listingUri!)!.some((d) => (d.data as { layer?: string }).layer === 'h2'));
  });

  it('reports progress with percentages; cancelling the request leaves no file behind', async () => {
    const source = new CancellationTokenSource();
    const token = 'client-progress-1';
    // The paper's stochastic schedule to an unreachable tolerance runs for seconds.
    const pending = run({ file: uri('ae.json'), scope: { kind: 'network' }, method: 'stochastic', tolerance: 1e-15 }, source, token);
    await c.waitFor('progress reports', () => c.progress.filter((p) => p.token === token && p.value.kind === 'report').length >= 2);
    const begin = c.progress.find((p) => p.token === token && p.value.kind === 'begin')!;
    assert.match(String((begin.value as { title?: string }).title), /^Balancing ae\.json \(network\)$/);
    assert.ok(c.progress.some((p) => p.token === token && typeof p.value.percentage === 'number' && p.value.percentage > 0));
    source.cancel();
    const r = await pending;
    assert.equal(r.cancelled, true);
    await c.waitFor('the progress to end', () => c.progress.some((p) => p.token === token && p.value.kind === 'end'));
    assert.ok(!existsSync(path('ae.balanced.json')));
    assert.deepEqual(readdirSync(root).filter((f) => f.endsWith('.tmp')), []);
  });

  it('cancelling from the progress UI (window/workDoneProgress/cancel) also stops it', async () => {
    const seen = new Set(c.progress.map((p) => p.token));
    const pending = run({ file: uri('ae2.json'), scope: { kind: 'network' }, method: 'stochastic', tolerance: 1e-15 });
    const begin = await c.waitFor('server-created progress', () => c.progress.find((p) => !seen.has(p.token) && p.value.kind === 'begin'));
    assert.equal((begin.value as { cancellable?: boolean }).cancellable, true);
    await c.conn.sendNotification('window/workDoneProgress/cancel', { token: begin.token });
    const r = await pending;
    assert.equal(r.cancelled, true);
    assert.ok(!existsSync(path('ae2.balanced.json')));
  });

  it('balances for another p when the request names one, leaving the setting and the analyses alone', async () => {
    const r = await run({ file: uri('ae2.json'), scope: { kind: 'network' }, regularizerP: 1 });
    assert.equal(r.cancelled, false);
    assert.ok(r.converged);
    const written = parseNetworkJson(readFileSync(path('ae2.balanced.json'), 'utf8'), 'ae2.balanced.json');
    // Balanced under L1, so not under the workspace's L2 ...
    const l1 = analyze(compile(written, lp(1)), undefined, { tolerance: 1e-6, skipPredictions: true });
    const l2 = analyze(compile(written, lp(2)), undefined, { tolerance: 1e-6, skipPredictions: true });
    assert.equal(l1.unbalanced, 0);
    assert.ok(l2.unbalanced > 0);
    // ... and the server analyses the written file under its own settings (L2): still diagnostics.
    await c.settled(uri('ae2.balanced.json'));
    assert.match((await c.listing(uri('ae2.balanced.json'))).text, /regularizer {2}L2/);
    await assert.rejects(run({ file: uri('ae2.json'), scope: { kind: 'network' }, regularizerP: -1 }), /regularizerP must be a positive number/);
  });

  it('writes in place when the setting says so, keeping a .bak', async () => {
    c.settings = { ...c.settings, inPlace: true };
    await c.conn.sendNotification('workspace/didChangeConfiguration', { settings: null });
    const original = readFileSync(path('inplace.json'), 'utf8');
    await new Promise((r) => setTimeout(r, 100));
    const r = await run({ file: uri('inplace.json'), scope: { kind: 'network' } });
    assert.equal(r.output, uri('inplace.json'));
    assert.equal(readFileSync(path('inplace.json.bak'), 'utf8'), original);
    assert.notEqual(readFileSync(path('inplace.json'), 'utf8'), original);
    assertSameFunction(path('inplace.json.bak'), path('inplace.json'));
    assert.deepEqual(c.diagnostics.get(uri('inplace.json')), []);
    assert.equal(c.diagnostics.get(listingUriOf(uri('inplace.json')))!.length, 0);
    c.settings = { ...c.settings, inPlace: false };
    await c.conn.sendNotification('workspace/didChangeConfiguration', { settings: null });
  });

  it('rejects bad arguments and names the problem', async () => {
    await assert.rejects(run({ file: uri('mlp.json'), scope: { kind: 'unit', layer: 'h1', index: 99 } }), /layer h1 has no unit 99/);
    await assert.rejects(run({ file: 'not a uri', scope: { kind: 'network' } } as BalanceArgs), /needs \{file/);
    await assert.rejects(c.conn.sendRequest('workspace/executeCommand', { command: Commands.balance, arguments: [{ file: uri('mlp.json'), scope: { kind: 'nope' } }] }), /scope must be/);
  });

  it('balances only checkpoints under the workspace folders: not a file elsewhere, not through .., not a listing URI', async () => {
    const elsewhere = scratchDir('synbal-outside-');
    try {
      const victim = join(elsewhere, 'victim.json');
      writeFileSync(victim, exampleJson('mlp'));
      const before = readFileSync(victim);
      const network = { kind: 'network' } as const;
      await assert.rejects(run({ file: fileUri(victim), scope: network }), /not under a workspace folder/);
      await assert.rejects(run({ file: `${uri('mlp.json').replace(/mlp\.json$/, '')}..${'/..'.repeat(8)}${victim}`, scope: network }), /not under a workspace folder|no such file/);
      symlinkSync(victim, path('link.json'));
      await assert.rejects(run({ file: uri('link.json'), scope: network }), /not under a workspace folder/);
      await assert.rejects(run({ file: listingUriOf(uri('mlp.json')), scope: network }), /needs \{file: a file: URI/);
      assert.deepEqual(readFileSync(victim), before);
      assert.deepEqual(readdirSync(elsewhere), ['victim.json']);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
      rmSync(path('link.json'), { force: true });
    }
  });
});
