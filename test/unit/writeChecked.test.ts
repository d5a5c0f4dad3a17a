// The one verification policy (server/src/app/writeChecked.ts), on a real network file: a copy
// is checked in a staging folder and moved into place only when it computes what the original
// does; a refused copy leaves nothing behind; a format whose own check cannot run falls back to
// the engine and says so; replacing files keeps each as .bak.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openNetworkFile, type OpenedNetwork } from '../../server/src/app/openNetwork';
import { compileFor } from '../../server/src/app/problem';
import { isStagingFolder, writeChecked } from '../../server/src/app/writeChecked';
import { balance } from '../../server/src/engine/balance';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { lp } from '../../server/src/engine/regularizer';
import { FileError } from '../../server/src/errors/fileError';
import type { ModelFormat } from '../../server/src/formats/core/format';
import { networkToJson } from '../../server/src/formats/networkJson';
import { mlp } from '../../server/src/examples/networks';
import type { Tensor } from '../../server/src/tensor/tensor';
import { scratchDir } from '../support/scratch';

const CHECKED = { enabled: true, force: false, requireCheck: true };

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function fixture(): { dir: string; path: string; opened: OpenedNetwork; changed: Map<string, Tensor> } {
  const dir = scratchDir('synbal-wc-');
  dirs.push(dir);
  const path = join(dir, 'net.json');
  writeFileSync(path, networkToJson(mlp({ sizes: [5, 8, 8, 3], seed: 4, std: 0.6 })));
  const opened = openNetworkFile(path);
  const problem = compileFor(path, opened.network, lp(2));
  const changed = scaledTensors(problem, balance(problem, { tolerance: 1e-9 }).x);
  return { dir, path, opened, changed };
}

/** The same format, but its writer doubles one scaled tensor: a copy that computes something else. */
function corrupting(format: ModelFormat): ModelFormat {
  return {
    ...format,
    write: (cp, changed, target, opts) => {
      const [name, t] = [...changed][0];
      const doubled = new Map(changed).set(name, { ...t, data: Float64Array.from(t.data, (v) => 2 * v) });
      return format.write(cp, doubled, target, opts);
    },
  };
}

const leftovers = (dir: string) => readdirSync(dir).filter(isStagingFolder);

describe('the verification policy', () => {
  it('checks the copy with the engine over the weights read back, then moves it into place', async () => {
    const { dir, path, opened, changed } = fixture();
    const target = join(dir, 'net.balanced.json');
    const r = await writeChecked(opened, changed, target, { backup: false, verify: CHECKED, activation: '' });
    assert.deepEqual(r.written, [target]);
    assert.equal(r.verification?.method, 'engine forward pass');
    assert.ok(r.verification!.maxRelative < 1e-9, String(r.verification!.maxRelative));
    assert.ok(existsSync(target) && existsSync(path));
    assert.deepEqual(leftovers(dir), []);
  });

  it('refuses a copy that computes something else: nothing written, nothing left behind', async () => {
    const { dir, opened, changed } = fixture();
    const target = join(dir, 'net.balanced.json');
    const bad = { ...opened, format: corrupting(opened.format) };
    await assert.rejects(writeChecked(bad, changed, target, { backup: false, verify: CHECKED, activation: '' }), (e: Error) => {
      assert.ok(e instanceof FileError && e.kind === 'refused' && e.path === opened.checkpoint.path, e.message);
      assert.match(e.problem, /outputs differ by .* nothing written/);
      return true;
    });
    assert.deepEqual(readdirSync(dir), ['net.json']);
  });

  it('keeps a differing copy when forced', async () => {
    const { dir, opened, changed } = fixture();
    const target = join(dir, 'net.balanced.json');
    const bad = { ...opened, format: corrupting(opened.format) };
    const r = await writeChecked(bad, changed, target, { backup: false, verify: { ...CHECKED, force: true }, activation: '' });
    assert.ok(r.verification!.maxRelative > 1e-3 && existsSync(target));
  });

  it("falls back to the engine when the format's own check cannot run here, and says why", async () => {
    const { dir, opened, changed } = fixture();
    const withRuntime: ModelFormat = { ...opened.format, verifyWritten: { unavailable: () => 'the runtime is not installed', run: () => assert.fail('run without a runtime') } };
    const r = await writeChecked({ ...opened, format: withRuntime }, changed, join(dir, 'out.json'), { backup: false, verify: CHECKED, activation: '' });
    assert.equal(r.skipped, "the runtime is not installed: checked with the engine's forward pass instead");
    assert.ok(r.verification!.maxRelative < 1e-9);
  });

  it("uses the format's own check when it runs", async () => {
    const { dir, opened, changed } = fixture();
    let seen: string[] = [];
    const withRuntime: ModelFormat = {
      ...opened.format,
      verifyWritten: {
        unavailable: () => undefined,
        run: async (original, written) => {
          seen = [original, written];
          return { method: 'its runtime', maxAbsolute: 0, maxRelative: 0, samples: 1, steps: 1 };
        },
      },
    };
    const target = join(dir, 'out.json');
    const r = await writeChecked({ ...opened, format: withRuntime }, changed, target, { backup: false, verify: CHECKED, activation: '' });
    assert.equal(r.verification?.method, 'its runtime');
    assert.equal(seen[0], opened.checkpoint.path);
    // The check ran on the staged copy, before it was moved to the target.
    assert.notEqual(seen[1], target);
    assert.ok(isStagingFolder(seen[1].split('/').at(-2)!), seen[1]);
  });

  it('replacing the input keeps it as .bak', async () => {
    const { path, opened, changed } = fixture();
    const before = readFileSync(path);
    await writeChecked(opened, changed, path, { backup: true, verify: CHECKED, activation: '' });
    assert.deepEqual(readFileSync(`${path}.bak`), before);
    assert.notDeepEqual(readFileSync(path), before);
  });
});

describe('backups never write through a link', () => {
  it('a .bak that is a symbolic link is replaced, not written through', async () => {
    const { dir, path, opened, changed } = fixture();
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, `${path}.bak`);
    const before = readFileSync(path);
    await writeChecked(opened, changed, path, { backup: true, verify: CHECKED, activation: '' });
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    assert.ok(!lstatSync(`${path}.bak`).isSymbolicLink());
    assert.deepEqual(readFileSync(`${path}.bak`), before);
  });

  it('the same through a format writer replacing its own target (no staging)', () => {
    const { dir, path, opened, changed } = fixture();
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, `${path}.bak`);
    opened.format.write(opened.checkpoint, changed, path, { backup: true });
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    assert.ok(!lstatSync(`${path}.bak`).isSymbolicLink());
  });
});
