// An independent client: Debian's Neovim (0.7.2) runs headless against `synbal-lsp --stdio`
// and prints the diagnostics it received (test/lsp/nvim/client.lua). No VS Code-only request
// is involved: a plain client gets the diagnostics of the checkpoints under its root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FORMATS } from '../../server/src/formats/registry';
import { SERVER } from './client';
import { exampleJson, makeWorkspace } from './workspace';

const CLIENT = join(__dirname, 'nvim', 'client.lua');
const INIT = join(__dirname, 'nvim', 'init.lua');
const LISTING = join(__dirname, 'nvim', 'listing.lua');
const FIXTURES = join(__dirname, '..', 'fixtures', 'models');

function hasNvim(): boolean {
  return spawnSync('nvim', ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Neovim, installed from Debian if it is missing and this is a root shell with apt; otherwise why not. */
function ensureNvim(): string | undefined {
  if (hasNvim()) return undefined;
  const isRoot = process.getuid?.() === 0;
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    spawnSync('apt-get', ['install', '-y', 'neovim'], { stdio: 'ignore', timeout: 180_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (hasNvim()) return undefined;
  }
  return 'nvim is not installed (apt-get install -y neovim) and could not be installed here';
}

function runNvim(root: string, file: string, init = 'NONE', script = CLIENT): { status: number | null; out: string; err: string } {
  const r = spawnSync('nvim', ['--headless', '-u', init, '-c', `luafile ${script}`, file], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, SYNBAL_SERVER: SERVER, SYNBAL_ROOT: root },
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('Neovim as the LSP client', () => {
  const missing = ensureNvim();

  it('receives the checkpoint summary on the file and the listing diagnostics', { skip: missing }, () => {
    const root = makeWorkspace({ 'mlp.json': exampleJson('mlp') });
    const r = runNvim(root, join(root, 'mlp.json'));
    assert.equal(r.status, 0, `nvim failed:\n${r.out}\n${r.err}`);
    const lines = r.out.split('\n').filter(Boolean);
    const diag = lines.filter((l) => l.startsWith('DIAG '));
    assert.deepEqual(diag, [
      'DIAG 1:1 checkpoint-unbalanced 32 of 32 balanceable units out of balance in 2 layers (worst h2#14: relative deficit 0.919041 > 0.001; L2, R = 121.086); see the listing',
    ]);
    const listing = lines.filter((l) => l.startsWith('LISTING '));
    assert.equal(listing.filter((l) => / layer-unbalanced /.test(l)).length, 2);
    assert.equal(listing.filter((l) => / unit-unbalanced /.test(l)).length, 20);
    assert.ok(listing.includes('LISTING 28:3 unit-unbalanced h1#9 out of balance: IN 0.708 vs OUT 3.35577 (relative deficit 0.651555); scaling it by λ* = 1.4755 lowers R by 0.980987'));
  });

  it("works as the README sets it up: the listing, with its diagnostics, hovers and code actions", { skip: missing }, () => {
    const root = makeWorkspace({ 'mlp.json': exampleJson('mlp') });
    const r = runNvim(root, join(root, 'mlp.json'), INIT, LISTING);
    assert.equal(r.status, 0, `nvim failed:\n${r.out}\n${r.err}`);
    const lines = r.out.split('\n').filter(Boolean);
    assert.deepEqual(lines, [
      `BUFFER synbal-listing://${join(root, 'mlp.json')}.listing 59 22`,
      'HOVER **h1#9** — hidden unit, leaky_relu (example)',
      'ACTION Balance unit h1#9 (λ* = 1.4755, R −0.980987) | synbal.balance',
      'ACTION Balance layer h1, each unit (R −6.05095) | synbal.balance',
      'ACTION Balance layer h1 with one shared λ (tied) (λ = 1.13082, R −2.78379) | synbal.balance',
      'ACTION Balance the whole network (global optimum) | synbal.balance',
    ]);
  });

  // A real model from PyTorch's exporter, once the ONNX reader is registered.
  const onnxReady = FORMATS.some((f) => f.extensions.includes('onnx'));
  it('receives diagnostics for a real ONNX model', { skip: missing ?? (onnxReady ? undefined : 'no ONNX reader registered yet') }, () => {
    const root = makeWorkspace({ 'mlp_relu.onnx': readFileSync(join(FIXTURES, 'mlp_relu.onnx')) });
    const r = runNvim(root, join(root, 'mlp_relu.onnx'));
    assert.equal(r.status, 0, `nvim failed:\n${r.out}\n${r.err}`);
    assert.match(r.out, /^DIAG 1:1 checkpoint-unbalanced \d+ of \d+ balanceable units out of balance/m);
  });
});
