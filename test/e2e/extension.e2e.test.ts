// The packaged extension (.vsix) inside a real VS Code (code-server 4.100.3 in Chromium), on a
// folder holding a third-party ONNX model, models made by PyTorch, and two bad files. What a
// user sees is asserted in the UI: Problems, the status bar, the listing and its highlighting,
// a quick fix that rewrites the file, the summary page, and the errors of bad files.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Locator } from 'playwright-core';
import { fetchModel } from '../support/thirdPartyModels';
import { ROOT, VsCodeSession, missingPrerequisite } from './codeServer';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'models');
/** Screenshots for the README and for a failing CI run (git ignores .cache/). */
export const SHOTS = join(ROOT, '.cache', 'e2e-screenshots');

const missing = missingPrerequisite();

describe('the extension in VS Code (code-server)', { skip: missing }, () => {
  let s: VsCodeSession;
  let ws: string;

  before(async () => {
    ws = mkdtempSync(join(tmpdir(), 'synbal-e2e-ws-'));
    mkdirSync(SHOTS, { recursive: true });
    copyFileSync(fetchModel('alexa'), join(ws, 'alexa.onnx'));
    copyFileSync(join(FIXTURES, 'mlp_relu.onnx'), join(ws, 'mlp_relu.onnx'));
    copyFileSync(join(ROOT, 'server', 'examples', 'cnn_bn.onnx'), join(ws, 'cnn_bn.onnx'));
    writeFileSync(join(ws, 'notes.onnx'), 'these are my notes, not a model\n');
    writeFileSync(join(ws, 'truncated.onnx'), readFileSync(join(FIXTURES, 'mlp_relu.onnx')).subarray(0, 300));
    // Quick fixes overwrite the file (keeping .bak), so its diagnostics go away in place.
    s = await VsCodeSession.start({ workspace: ws, settings: { 'synapticBalance.inPlace': true } });
  });

  after(async () => {
    await s?.stop();
    if (ws) rmSync(ws, { recursive: true, force: true });
  });

  /** Fails with the extension's own logs, which say more than a timeout. */
  async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > deadline) {
        await s.page.screenshot({ path: join(SHOTS, `failed-${what.replace(/\W+/g, '-')}.png`) });
        assert.fail(`timed out waiting for ${what}\n${s.extensionLogs()}`);
      }
      await s.page.waitForTimeout(250);
    }
  }

  const statusItem = (): Locator => s.page.locator('.statusbar-item', { hasText: /checkpoints?,/ });
  const statusText = async (): Promise<string> => ((await statusItem().count()) ? (await statusItem().first().innerText()).trim() : '');
  // Monaco renders spaces as U+00A0; the lists are virtual, so only rows in view exist.
  const plain = (t: string): string => t.replace(/\u00a0/g, ' ');
  const problemRows = async (): Promise<string[]> => (await s.page.locator('.markers-panel .monaco-list-row').allInnerTexts()).map(plain);

  async function showProblems(filter = ''): Promise<void> {
    if (!(await s.page.locator('.markers-panel').isVisible())) await s.page.keyboard.press('Control+Shift+M');
    const box = s.page.locator('.markers-panel-action-filter input, .viewpane-filter input').first();
    await box.fill(filter);
    await s.page.waitForTimeout(400);
  }

  it('activates on the folder: the status bar counts checkpoints and unbalanced units', async () => {
    await until('the analysis of 5 checkpoints', async () => /^5 checkpoints, \d+ unbalanced units, 2 failed$/.test(await statusText()));
  });

  it('fills Problems: a summary per model, the worst units per layer, the bad files\' errors', async () => {
    const seen: string[] = [];
    for (const f of ['alexa.onnx', 'mlp_relu.onnx', 'cnn_bn.onnx', 'notes.onnx', 'truncated.onnx']) {
      await showProblems(f.replace('.onnx', ''));
      await until(`problems of ${f}`, async () => (await problemRows()).some((r) => r.includes(f)));
      seen.push(...(await problemRows()));
    }
    await showProblems('');
    await s.page.screenshot({ path: join(SHOTS, 'problems.png') });
    const rows = seen.join('\n');
    assert.match(rows, /\d+ of 256 balanceable units out of balance/, 'the third-party model: two ReLU layers of 128 units');
    assert.match(rows, /not a model format this tool knows/);
    assert.match(rows, /unknown-format/);
    assert.match(rows, /unreadable/);
    assert.match(rows, /out of balance: IN [\d.e-]+ vs OUT [\d.e-]+ \(relative deficit/);
    await showProblems('truncated');
    const err = (await problemRows()).join('\n');
    assert.match(err, /truncated\.onnx/);
    assert.ok(await s.page.locator('.markers-panel .monaco-list-row .codicon-error').count() > 0, 'bad files are errors');
    await showProblems('');
  });

  it('opens a listing from the explorer, highlighted by the grammar', async () => {
    await s.page.getByRole('treeitem', { name: 'mlp_relu.onnx' }).click({ button: 'right' });
    await s.page.locator('.context-view .action-label', { hasText: 'Open Balance Listing' }).click();
    await s.page.locator('.tab', { hasText: 'mlp_relu.onnx.listing' }).waitFor();
    const lines = s.page.locator('.editor-instance .view-lines');
    await until('the listing text', async () => plain(await lines.innerText()).includes('Synaptic Balance listing of'));
    // The grammar gives layers, units, numbers and statuses their own colours (tokenizing is asynchronous).
    const colours = async (): Promise<string[]> =>
      s.page.locator('.editor-instance .view-line span[class^="mtk"]').evaluateAll((els) => [...new Set(els.map((e) => getComputedStyle(e).color))]);
    await until('the listing to be highlighted', async () => (await colours()).length >= 4);
    assert.equal(await s.page.locator('.monaco-editor[data-mode-id="synbal-listing"]').count() > 0 || (await s.page.locator('.statusbar-item', { hasText: 'Synaptic Balance Listing' }).count()) > 0, true, 'the listing language is set');
  });

  it('a quick fix (Ctrl+.) rewrites the model; its diagnostics disappear and the status bar updates', async () => {
    const before = Number(/, (\d+) unbalanced/.exec(await statusText())![1]);
    // The first layer's diagnostic (Problems: "[Ln 8, Col 7]"): go there, then ask for fixes.
    await s.page.locator('.editor-instance .view-lines').click();
    await s.page.keyboard.press('Control+G');
    await s.page.locator('.quick-input-widget input').fill(':8:8');
    await s.page.keyboard.press('Enter');
    await s.page.keyboard.press('Control+.');
    const fixAll = s.page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Balance the whole network' }).first();
    await fixAll.waitFor({ timeout: 20_000 });
    await s.page.screenshot({ path: join(SHOTS, 'listing-quick-fix.png') });
    await fixAll.click();
    await until('the backup of the rewritten file', async () => existsSync(join(ws, 'mlp_relu.onnx.bak')));
    await showProblems('mlp_relu');
    await until('mlp_relu.onnx to have no diagnostics', async () => (await problemRows()).length === 0, 90_000);
    await until('the status bar to count fewer unbalanced units', async () => {
      const m = /^5 checkpoints, (\d+) unbalanced units, 2 failed$/.exec(await statusText());
      return !!m && Number(m[1]) < before;
    });
    await showProblems('');
    await s.page.screenshot({ path: join(SHOTS, 'after-fix.png') });
    assert.ok(readFileSync(join(ws, 'mlp_relu.onnx')).length > 0);
    assert.notDeepEqual(readFileSync(join(ws, 'mlp_relu.onnx')), readFileSync(join(ws, 'mlp_relu.onnx.bak')), 'the weights changed');
  });

  it('gives a checkpoint a summary page (Open With…) whose buttons call the server', async () => {
    await s.page.getByRole('treeitem', { name: 'cnn_bn.onnx' }).click({ button: 'right' });
    await s.page.locator('.context-view .action-label', { hasText: /^Open With/ }).click();
    await s.page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Synaptic Balance Summary' }).click();
    const frame = s.page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await frame.locator('h1', { hasText: 'cnn_bn.onnx' }).waitFor({ timeout: 30_000 });
    await until('the summary numbers', async () => (await frame.locator('body').innerText()).includes('30 of 30 balanceable units are out of balance'));
    await s.page.screenshot({ path: join(SHOTS, 'summary-page.png') });
    await frame.locator('button', { hasText: 'Open Balance Listing' }).click();
    await s.page.locator('.tab', { hasText: 'cnn_bn.onnx.listing' }).waitFor({ timeout: 20_000 });
  });
});
