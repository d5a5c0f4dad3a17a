// The extension manifest (package.json) against the client's code and the contract:
// every contributed command has a handler, every server setting is contributed with its
// default and check (the contract's settings table), config.ts maps VS Code settings onto the server's Settings, and the status bar's
// summary of `synbal/checkpoints`. None of this needs VS Code.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { checkpointPageHtml, summaryRows } from '../../client/src/checkpointPage';
import { CommandIds } from '../../client/src/ids';
import { settingsFrom, type ConfigSource } from '../../client/src/config';
import { statusText, summarize, summaryText } from '../../client/src/summary';
import { CHECKPOINT_EDITOR_VIEW_TYPE } from '../../server/src/contract/checkpointPage';
import type { CheckpointInfo } from '../../server/src/contract/requests';
import { DEFAULT_SETTINGS, isValidSetting, SETTING_NAMES, SETTINGS, SETTINGS_SECTION, type SettingSpec, type Settings } from '../../server/src/contract/settings';
import { normalizeSettings } from '../../server/src/lsp/settings';

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
const clientSources = readdirSync(new URL('client/src/', root))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(new URL(`client/src/${f}`, root), 'utf8'))
  .join('\n');

/** A configuration section as VS Code's `WorkspaceConfiguration.get` reads it. */
function section(values: Record<string, unknown>): ConfigSource {
  return { get: ((key: string, fallback?: unknown) => (key in values ? values[key] : fallback)) as ConfigSource['get'] };
}

describe('package.json commands', () => {
  const commands: { command: string; title: string; category: string }[] = pkg.contributes.commands;
  const ids = Object.values(CommandIds) as string[];

  it('contributes exactly the commands the client registers, under "Synaptic Balance:"', () => {
    assert.deepEqual(commands.map((c) => c.command).sort(), [...ids].sort());
    for (const c of commands) assert.equal(c.category, 'Synaptic Balance', c.command);
    const keys = Object.entries(CommandIds).map(([k]) => k);
    for (const k of keys) assert.match(clientSources, new RegExp(`reg(?:isterCommand)?\\(\\s*CommandIds\\.${k}\\b`), `no handler for CommandIds.${k}`);
    // The extension registers them on activation.
    const ext = readFileSync(new URL('client/src/extension.ts', root), 'utf8');
    assert.match(ext, /registerCommands\(context,/);
  });

  it('offers the three explorer context menu entries with the titles the issue names, and the monitor on logs and folders', () => {
    const titles = new Map(commands.map((c) => [c.command, c.title]));
    const all: { command: string; when: string }[] = pkg.contributes.menus['explorer/context'];
    assert.deepEqual(all.map((m) => titles.get(m.command)), ['Open Balance Listing', 'Balance Network…', 'Check Balance', 'Open Training Monitor']);
    assert.equal(all[3].when, 'explorerResourceIsFolder || resourceExtname == .jsonl');
    const menu = all.slice(0, 3);
    for (const m of menu) {
      assert.match(m.when, /resourceScheme == file/);
      const re = new RegExp(m.when.match(/=~ \/(.*)\/$/)![1]);
      assert.ok(re.test('model.onnx') && re.test('w.safetensors') && re.test('ckpt.pt') && !re.test('notes.txt'), m.when);
    }
  });

  it('points main at the bundle and validates manifests with the server schema', () => {
    assert.equal(pkg.main, 'dist/extension.js');
    assert.ok(pkg.activationEvents.includes('workspaceContains:**/*.onnx'));
    assert.ok(pkg.activationEvents.includes('onFileSystem:synbal-listing'));
    assert.deepEqual(pkg.contributes.jsonValidation, [{ fileMatch: '*.synbal.json', url: './server/schemas/manifest.schema.json' }]);
    assert.ok(existsSync(new URL('server/schemas/manifest.schema.json', root)));
    assert.equal(pkg.dependencies['vscode-languageclient'], '11.0.0');
    assert.equal(pkg.devDependencies['@types/vscode'], '1.100.0');
  });

  it('bundles the extension with `vscode` left to the host (after npm run build)', (t) => {
    const bundle = new URL('dist/extension.js', root);
    if (!existsSync(bundle)) return t.skip('dist/extension.js not built');
    const requires = new Set([...readFileSync(bundle, 'utf8').matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
    assert.ok(requires.has('vscode'));
    for (const r of requires) assert.ok(r === 'vscode' || !r.includes('/') || r.startsWith('node:'), `bundle requires ${r} at run time`);
    assert.ok(!requires.has('vscode-languageclient') && !requires.has('vscode-languageclient/node'));
  });
});

describe('package.json settings', () => {
  const props: Record<string, { type: string; default: unknown; description?: string; markdownDescription?: string; enum?: string[] }> = pkg.contributes.configuration.properties;

  it("contributes every server setting, with the server's default, a type and a description", () => {
    const keys = Object.keys(DEFAULT_SETTINGS) as (keyof Settings)[];
    assert.deepEqual(Object.keys(props).sort(), keys.map((k) => `${SETTINGS_SECTION}.${k}`).sort());
    for (const k of keys) {
      const p = props[`${SETTINGS_SECTION}.${k}`];
      assert.deepEqual(p.default, DEFAULT_SETTINGS[k], k);
      const d = DEFAULT_SETTINGS[k];
      const expected = Array.isArray(d) ? 'array' : typeof d === 'number' ? ['number', 'integer'] : typeof d;
      assert.ok(Array.isArray(expected) ? expected.includes(p.type) : p.type === expected, `${k}: ${p.type}`);
      assert.ok((p.description ?? p.markdownDescription ?? '').length > 10, `${k} has no description`);
    }
    assert.deepEqual(props[`${SETTINGS_SECTION}.severity`].enum, ['error', 'warning', 'information', 'hint']);
  });

  it('every setting in the interface Settings of contract/settings.ts has a default (so it is contributed)', () => {
    const protocol = readFileSync(new URL('server/src/contract/settings.ts', root), 'utf8');
    const body = protocol.match(/export interface Settings \{([\s\S]*?)\n\}/)![1];
    const fields = [...body.matchAll(/^\s+(\w+):/gm)].map((m) => m[1]);
    assert.deepEqual(fields.sort(), Object.keys(DEFAULT_SETTINGS).sort());
  });

  it("agrees with the contract's settings table: every name, default, type, enum and minimum", () => {
    const all = props as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(all), SETTING_NAMES.map((k) => `${SETTINGS_SECTION}.${k}`), 'same names, same order');
    for (const k of SETTING_NAMES) {
      const p = all[`${SETTINGS_SECTION}.${k}`];
      const spec = SETTINGS[k] as SettingSpec<unknown>;
      assert.deepEqual(p.default, spec.default, `${k}: default`);
      assert.equal(p.type, spec.type, `${k}: type`);
      assert.deepEqual(p.enum, spec.enum, `${k}: enum`);
      assert.equal(p.minimum, spec.minimum, `${k}: minimum`);
      assert.equal(p.exclusiveMinimum, spec.exclusiveMinimum, `${k}: exclusiveMinimum`);
      if (spec.type === 'array') assert.deepEqual(p.items, { type: 'string' }, `${k}: items`);
      assert.ok(isValidSetting(spec, p.default), `${k}: the default passes its own check`);
    }
  });
});

describe('settings validation (one function for the client and the server)', () => {
  it('gives the client and the server the same settings from the same values', () => {
    const values: Record<string, unknown>[] = [
      {},
      { regularizerP: 1.5, tolerance: 0, severity: 'hint', inPlace: true, include: ['a/**'], maxDiagnosticsPerLayer: 0, pollIntervalMs: 1, settleMs: 0, device: 'mps', python: ' /opt/py ' },
      { regularizerP: 0, tolerance: -1, severity: 'loud', inPlace: 1, include: [''], exclude: 'x', maxDiagnosticsPerLayer: 2.5, activation: null, pollIntervalMs: 0.5, settleMs: Infinity, device: 'tpu', python: 3 },
    ];
    for (const v of values) assert.deepEqual(settingsFrom(section(v)), normalizeSettings(v), JSON.stringify(v));
  });
});

describe('config.ts', () => {
  it('reads the defaults from an empty section and from the contributed defaults', () => {
    assert.deepEqual(settingsFrom(section({})), DEFAULT_SETTINGS);
    const props: Record<string, { default: unknown }> = pkg.contributes.configuration.properties;
    const fromPkg = Object.fromEntries(Object.entries(props).map(([k, v]) => [k.slice(SETTINGS_SECTION.length + 1), v.default]));
    assert.deepEqual(settingsFrom(section(fromPkg)), DEFAULT_SETTINGS);
  });

  it("maps the user's values onto the server's Settings", () => {
    const mine: Settings = { regularizerP: 1.5, tolerance: 0.01, severity: 'error', inPlace: true, include: ['models/**/*.onnx'], exclude: [], maxDiagnosticsPerLayer: 3, activation: 'relu', pollIntervalMs: 500, settleMs: 0, device: 'cuda', python: '/usr/bin/python3' };
    assert.deepEqual(settingsFrom(section({ ...mine })), mine);
  });

  it('falls back to the default for values of the wrong type or out of range', () => {
    const bad = settingsFrom(section({ regularizerP: -1, tolerance: 'x', severity: 'fatal', inPlace: 'yes', include: [1], exclude: null, maxDiagnosticsPerLayer: Number.NaN, activation: 3, pollIntervalMs: 0, settleMs: -5 }));
    assert.deepEqual(bad, DEFAULT_SETTINGS);
    // Arrays are copies: the server may not change the defaults.
    assert.notEqual(settingsFrom(section({})).exclude, DEFAULT_SETTINGS.exclude);
  });
});

describe('the status bar summary', () => {
  const info = (file: string, over: Partial<CheckpointInfo>): CheckpointInfo => ({ fileUri: `file:///w/${file}`, listingUri: `synbal-listing:///w/${file}.listing`, state: 'analysed', version: 1, ...over });

  it('counts checkpoints and unbalanced units, and finds the worst listing', () => {
    const s = summarize([
      info('a.onnx', { unbalanced: 400, maxRelativeDeficit: 0.5 }),
      info('b.pt', { unbalanced: 12, maxRelativeDeficit: 0.9 }),
      info('c.safetensors', { unbalanced: 0 }),
      info('gone.onnx', { state: 'removed', unbalanced: 1000 }),
    ]);
    assert.equal(summaryText(s), '3 checkpoints, 412 unbalanced units');
    assert.equal(s.worst?.fileUri, 'file:///w/a.onnx');
    assert.match(statusText(s), /^\$\(warning\) 3 checkpoints, 412 unbalanced units$/);
  });

  it('spins while analysing, and names failures', () => {
    const busy = summarize([info('a.onnx', { state: 'analysing' }), info('b.onnx', { state: 'queued' }), info('c.onnx', { unbalanced: 1 })]);
    assert.match(statusText(busy), /^\$\(sync~spin\) .*analysing 2 of 3/);
    const failed = summarize([info('bad.onnx', { state: 'failed', error: 'truncated' }), info('ok.onnx', { unbalanced: 0 })]);
    assert.equal(summaryText(failed), '2 checkpoints, 0 unbalanced units, 1 failed');
    assert.equal(statusText(summarize([])), '$(check) 0 checkpoints, 0 unbalanced units');
  });
});

describe('custom editor and walkthrough', () => {
  it('offers the summary page (priority "option") for every extension the explorer menu names', () => {
    const [editor] = pkg.contributes.customEditors as { viewType: string; priority: string; selector: { filenamePattern: string }[] }[];
    assert.equal(editor.viewType, CHECKPOINT_EDITOR_VIEW_TYPE);
    assert.equal(editor.priority, 'option', 'never the default editor: binary files keep VS Code\'s own');
    const menuExts = /\\\.\(([^)]*)\)\$/.exec(pkg.contributes.menus['explorer/context'][0].when)![1].split('|').filter((e: string) => e !== 'json');
    assert.deepEqual(editor.selector.map((s) => s.filenamePattern.replace('*.', '')).sort(), menuExts.sort());
    assert.ok(pkg.activationEvents.includes(`onCustomEditor:${CHECKPOINT_EDITOR_VIEW_TYPE}`));
  });

  it('walks a newcomer through to a fix: every step has its media, and every command link exists', () => {
    const steps: { description: string; media: { markdown?: string }; completionEvents: string[] }[] = pkg.contributes.walkthroughs[0].steps;
    assert.ok(steps.length >= 4);
    const contributed = new Set((pkg.contributes.commands as { command: string }[]).map((c) => c.command));
    for (const s of steps) {
      assert.ok(s.media.markdown && existsSync(new URL(s.media.markdown, root)), s.media.markdown);
      for (const [, id] of s.description.matchAll(/\(command:([\w.]+)\)/g)) assert.ok(contributed.has(id) || id.startsWith('workbench.'), id);
      assert.ok(s.completionEvents.length > 0);
    }
  });
});

describe('checkpoint summary page', () => {
  const base: CheckpointInfo = { fileUri: 'file:///w/m.onnx', listingUri: 'synbal-listing:///w/m.onnx.listing', state: 'analysed', version: 3, format: 'onnx', parameters: 2751, balanceable: 30, unbalanced: 30, maxRelativeDeficit: 0.896084, R: 11.8488 };

  it('shows the numbers, the three buttons, and a CSP that allows only its nonce', () => {
    const html = checkpointPageHtml({ fileName: 'm.onnx', info: base, cspSource: 'vscode-resource:', nonce: 'abc123' });
    assert.match(html, /content="default-src 'none'; style-src vscode-resource: 'nonce-abc123'; script-src 'nonce-abc123'"/);
    for (const a of ['openListing', 'balanceNetwork', 'checkBalance']) assert.match(html, new RegExp(`data-action="${a}"`));
    assert.match(html, /30 of 30 balanceable units are out of balance/);
    assert.match(html, /<th scope="row">Parameters<\/th><td>2,751<\/td>/);
    assert.equal((html.match(/<script nonce="abc123">/g) ?? []).length, 1);
    assert.ok(!/<script>/.test(html));
  });

  it('escapes what comes from files, and says when all is balanced or not analysed', () => {
    const html = checkpointPageHtml({ fileName: '<img src=x>.onnx', info: { ...base, state: 'failed', error: 'bad "tensor" <w>', unbalanced: undefined }, cspSource: 'x', nonce: 'n' });
    assert.ok(!html.includes('<img src=x>') && html.includes('&#60;img src=x&#62;.onnx'));
    assert.ok(html.includes('bad &#34;tensor&#34; &#60;w&#62;'));
    assert.deepEqual(summaryRows({ ...base, unbalanced: 0 }).find(([k]) => k === 'Out of balance'), ['Out of balance', '0']);
    assert.match(checkpointPageHtml({ fileName: 'm.onnx', info: { ...base, unbalanced: 0 }, cspSource: 'x', nonce: 'n' }), /Every balanceable unit is in balance/);
    assert.deepEqual(summaryRows(undefined), [['State', 'not analysed yet']]);
  });
});
