// The packaged extension (.vsix) inside a real VS Code (code-server 4.100.3 in Chromium), on a
// folder holding a third-party ONNX model, models made by PyTorch, and two bad files. What a
// user sees is asserted in the UI: Problems, the status bar, the listing and its highlighting,
// a quick fix that rewrites the file, the summary page, and the errors of bad files.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { FrameLocator, Locator } from 'playwright-core';
import { fetchModel } from '../support/thirdPartyModels';
import { ROOT, VsCodeSession, missingPrerequisite } from './codeServer';
import { DEMO_RUNS, demoLogName } from '../../server/src/contract/monitor';


/** The step of a balance log's last complete line, or -1. */
function lastStep(file: string): number {
  if (!existsSync(file)) return -1;
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.endsWith('}'));
  return lines.length ? (JSON.parse(lines.at(-1)!) as { step: number }).step : -1;
}

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

  // The screen after each test: what a failing CI run looked like.
  afterEach(async (t) => {
    await s?.page.screenshot({ path: join(SHOTS, `after-${t.name.slice(0, 40).replace(/\W+/g, '-')}.png`) }).catch(() => undefined);
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

  /** Right-clicks an explorer item and picks a menu entry (VS Code ignores clicks in a menu's first moments). */
  async function explorerMenu(item: string, entry: string | RegExp): Promise<void> {
    await s.page.getByRole('treeitem', { name: item }).click({ button: 'right' });
    const action = s.page.locator('.context-view .action-label', { hasText: entry }).first();
    await action.waitFor();
    await s.page.waitForTimeout(400);
    await action.hover();
    await action.click();
  }

  /** The monitor's page: the webview whose page holds run columns (the summary page is another). */
  async function monitorPage(): Promise<FrameLocator> {
    const frames = s.page.locator('iframe.webview.ready');
    let found: FrameLocator | undefined;
    await until('the monitor panel', async () => {
      for (let i = 0; i < (await frames.count()); i++) {
        const f = frames.nth(i).contentFrame().locator('#active-frame').contentFrame();
        if ((await f.locator('.runs').count()) > 0) found = f;
      }
      return found !== undefined;
    });
    return found!;
  }

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
    await explorerMenu('mlp_relu.onnx', 'Open Balance Listing');
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
    await explorerMenu('cnn_bn.onnx', /^Open With/);
    await s.page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Synaptic Balance Summary' }).click();
    const frame = s.page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await frame.locator('h1', { hasText: 'cnn_bn.onnx' }).waitFor({ timeout: 30_000 });
    await until('the summary numbers', async () => (await frame.locator('body').innerText()).includes('30 of 30 balanceable units are out of balance'));
    await s.page.screenshot({ path: join(SHOTS, 'summary-page.png') });
    await frame.locator('button', { hasText: 'Open Balance Listing' }).click();
    await s.page.locator('.tab', { hasText: 'cnn_bn.onnx.listing' }).waitFor({ timeout: 20_000 });
  });

  it('clicking the status bar opens the worst listing', async () => {
    await statusItem().first().click();
    // The third-party model has the most units out of balance (256).
    await s.page.locator('.tab', { hasText: 'alexa.onnx.listing' }).waitFor({ timeout: 30_000 });
  });

  it('Balance Network… asks for the output and the regularizer, then writes the balanced file', async () => {
    await explorerMenu('cnn_bn.onnx', 'Balance Network…');
    const pick = async (text: string) => {
      const row = s.page.locator('.quick-input-widget .monaco-list-row', { hasText: text }).first();
      await row.waitFor({ timeout: 20_000 });
      await row.click();
    };
    await pick('New file');
    await pick('p = 2');
    await until('cnn_bn.balanced.onnx', async () => existsSync(join(ws, 'cnn_bn.balanced.onnx')), 60_000);
    await until('the report', async () => (await s.page.locator('.notification-toast', { hasText: 'Balanced cnn_bn.balanced.onnx' }).count()) > 0, 30_000);
    await showProblems('cnn_bn.balanced');
    await until('the balanced file analysed, with no diagnostics', async () => (await statusText()).startsWith('6 checkpoints') && (await problemRows()).length === 0, 60_000);
    await showProblems('');
  });

  it('runs the demo training and follows it live in the Training Monitor', async () => {
    await s.runCommand('Synaptic Balance: Start Demo Training');
    const m = await monitorPage();
    // Titled by file until the log names its run.
    const titles = async (): Promise<string> => (await m.locator('.run-title').allInnerTexts()).map((t) => t.trim()).sort().join(',');
    await until('four runs named by their logs', async () => (await titles()) === 'balanced-large-lr,rebalanced-large-lr,sgd,sgd-l2');
    const stepsShown = async (): Promise<number> => Number(await m.locator('.step-slider').getAttribute('max'));
    await until('logged steps to arrive', async () => (await stepsShown()) >= 3, 120_000);
    const first = await stepsShown();
    await until('more steps, live', async () => (await stepsShown()) > first, 120_000);
    await until('every run to show a step', async () => (await m.locator('.run-status').allInnerTexts()).every((t) => /^step \d+ · \d+ \/ \d+( · balanced, ΔR \S+)?$/.test(t.trim())), 60_000);
    // The heatmaps are drawn: several colours on each canvas.
    const colours = await m.locator('canvas.heatmap-canvas').evaluateAll((cs) =>
      (cs as HTMLCanvasElement[]).map((c) => {
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set<number>();
        for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return seen.size;
      }),
    );
    assert.equal(colours.length, 4);
    // Every run is drawn; the three that are never rebalanced show a spread of deficits (the
    // fourth may be caught just after a balance, its cells all one colour).
    assert.ok(colours.every((n) => n >= 2) && colours.filter((n) => n >= 3).length >= 3, `heatmap colours per run: ${colours.join(', ')}`);
    // The demo ends by itself; the monitor follows it to the last logged step.
    await until('the demo training to finish', async () => DEMO_RUNS.every((r) => lastStep(join(ws, '.synbal-demo-train', demoLogName(r))) >= 1980), 240_000);
    await until('the last step on screen', async () => (await m.locator('.run-status').allInnerTexts()).every((t) => t.trim().startsWith('step 2000 ')), 30_000);
    await s.runCommand('View: Hide Panel');
    await s.runCommand('Notifications: Clear All Notifications');
    await s.page.waitForTimeout(500);
    await s.page.screenshot({ path: join(SHOTS, 'monitor.png') });
  });

  it('watches a folder of checkpoints; clicking a unit opens that checkpoint\'s listing at the unit', async () => {
    // Two "training checkpoints": the original model (step 100) and its balanced copy (step 200).
    const folder = join(ws, 'ckpts');
    mkdirSync(folder);
    copyFileSync(join(ws, 'mlp_relu.onnx.bak'), join(folder, 'step_100.onnx'));
    copyFileSync(join(ws, 'mlp_relu.onnx'), join(folder, 'step_200.onnx'));
    await until('the folder in the explorer', async () => (await s.page.getByRole('treeitem', { name: 'ckpts' }).count()) > 0);
    await explorerMenu('ckpts', 'Open Training Monitor');
    const m = await monitorPage();
    const run = m.locator('.run', { has: m.locator('.run-title', { hasText: /^ckpts$/ }) });
    await until('both checkpoints analysed into frames', async () => (await run.locator('.run-status').innerText()).trim().startsWith('step 200 · 2 / 2'), 90_000);
    const canvas = run.locator('canvas.heatmap-canvas');
    const box = (await canvas.boundingBox())!;
    await canvas.click({ position: { x: box.width * 0.3, y: box.height * 0.2 } });
    await s.page.locator('.tab', { hasText: 'step_200.onnx.listing' }).waitFor({ timeout: 30_000 });
    // The unit's label is selected in the listing (e.g. "/0/Gemm#3": 9 characters).
    await until('the unit selected in the listing', async () => /Ln \d+, Col \d+ \(\d+ selected\)/.test(await s.page.locator('.statusbar').innerText()));
  });

  it('the monitor survives a window reload (its runs come back)', async () => {
    // Through the workbench's own reload: it saves the webviews' state on the way out, as a
    // desktop window reload does (a bare page reload may leave the last setState unsaved).
    await s.page.locator('.part.sidebar .title').first().click();
    await s.runCommand('Developer: Reload Window');
    await s.page.waitForTimeout(2000);
    await s.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    const m = await monitorPage();
    await until('the restored runs', async () => {
      const titles = (await m.locator('.run-title').allInnerTexts()).map((t) => t.trim()).sort().join(',');
      return titles === 'balanced-large-lr,ckpts,rebalanced-large-lr,sgd,sgd-l2';
    });
    await until('their series', async () => (await m.locator('.run-status').allInnerTexts()).every((t) => /^step \d+ · \d+ \/ \d+/.test(t.trim())), 60_000);
  });
});
