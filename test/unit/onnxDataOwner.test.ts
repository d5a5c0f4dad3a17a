// ONNX external data and the files around the output: a balanced copy's data file never
// replaces a data file that another model reads (it gets a `.balanced.data` name instead; an
// earlier copy at the same target, which owns its data, is replaced as before), on the CLI's
// checked path (staged, then moved into place) and through the format's own write. And
// locations read from a model stay inside its folder.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../server/src/cli';
import { FileError } from '../../server/src/errors/fileError';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { onnxFormat } from '../../server/src/formats/onnx/format';
import { onnxToNetwork } from '../../server/src/formats/onnx/network';
import type { Checkpoint } from '../../server/src/formats/core/checkpoint';
import type { Tensor } from '../../server/src/tensor/tensor';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const SRC = 'mlp_relu_external.onnx';
// The target's name is as long as the source's, so another model can be made by patching its location.
const TARGET = 'mlp_relu_externaX.onnx';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

/** The source model and its data, and `other.onnx`: the same model reading `<TARGET>.data`. */
function setup(): { dir: string; src: string; other: string; otherData: string; bytes: Buffer } {
  const dir = scratchDir('synbal-onnx-owner-');
  for (const n of [SRC, `${SRC}.data`]) copyFileSync(join(MODELS, n), join(dir, n));
  const model = readFileSync(join(MODELS, SRC));
  const from = Buffer.from(`${SRC}.data`);
  const to = Buffer.from(`${TARGET}.data`);
  assert.equal(from.length, to.length);
  const patched = Buffer.from(model);
  for (let at = patched.indexOf(from); at >= 0; at = patched.indexOf(from, at + 1)) to.copy(patched, at);
  const other = join(dir, 'other.onnx');
  writeFileSync(other, patched);
  const otherData = join(dir, `${TARGET}.data`);
  copyFileSync(join(MODELS, `${SRC}.data`), otherData);
  assert.ok(onnxFormat.open(other).tensors.some((e) => e.file === otherData), 'other.onnx reads the data file the target would take');
  return { dir, src: join(dir, SRC), other, otherData, bytes: readFileSync(otherData) };
}

function balanced(path: string): { changed: Map<string, Tensor>; cp: Checkpoint } {
  const cp = onnxFormat.open(path);
  const { network } = onnxToNetwork(cp);
  const problem = compile(network, lp(2));
  const result = balance(problem);
  assert.ok(result.converged);
  return { changed: scaledTensors(problem, result.x), cp };
}

describe("ONNX external data: another model's data file is never replaced", () => {
  it('the CLI (staged, checked, moved into place) writes <target>.balanced.data and leaves the other data file alone', async () => {
    const s = setup();
    const target = join(s.dir, TARGET);
    const r = await run(['balance', s.src, '-o', target, '--format', 'json']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.ok(readFileSync(s.otherData).equals(s.bytes), "the other model's data file kept its bytes");
    assert.ok(existsSync(`${target}.balanced.data`));
    assert.deepEqual(JSON.parse(r.out).outputs, [target, `${target}.balanced.data`], 'the report names the data file written');
    const written = onnxFormat.open(target);
    assert.ok(written.tensors.some((e) => e.file === `${target}.balanced.data`));
    assert.ok(!written.tensors.some((e) => e.file === s.otherData));
    // other.onnx still reads its own, unchanged weights.
    const other = onnxFormat.open(s.other);
    assert.ok(other.tensors.every((e) => e.file === s.other || e.file === s.otherData));

    // Balancing to the same target again replaces the copy's own data, still not the other's.
    const again = await run(['balance', s.src, '-o', target]);
    assert.equal(again.code, 0, again.out + again.err);
    assert.ok(readFileSync(s.otherData).equals(s.bytes));
    assert.ok(!existsSync(`${target}.balanced2.data`), 'the copy that owns .balanced.data replaced it');
    assert.ok(onnxFormat.open(target).tensors.some((e) => e.file === `${target}.balanced.data`));
  });

  it("the format's own write (unchecked) does the same", () => {
    const s = setup();
    const target = join(s.dir, TARGET);
    const { changed, cp } = balanced(s.src);
    const files = onnxFormat.write(cp, changed, target);
    assert.deepEqual(files, [target, `${target}.balanced.data`]);
    assert.ok(readFileSync(s.otherData).equals(s.bytes));
  });

  it('a data file nobody reads at <target>.data is not replaced either; a fresh target gets <target>.data', () => {
    const s = setup();
    const { changed, cp } = balanced(s.src);
    writeFileSync(join(s.dir, 'fresh.onnx.data'), 'notes, not weights');
    assert.deepEqual(onnxFormat.write(cp, changed, join(s.dir, 'fresh.onnx')), [join(s.dir, 'fresh.onnx'), join(s.dir, 'fresh.onnx.balanced.data')]);
    assert.equal(readFileSync(join(s.dir, 'fresh.onnx.data'), 'utf8'), 'notes, not weights');
    assert.deepEqual(onnxFormat.write(cp, changed, join(s.dir, 'new.onnx')), [join(s.dir, 'new.onnx'), join(s.dir, 'new.onnx.data')]);
  });
});

describe('ONNX external data locations stay in the model folder', () => {
  it('../, a deeper ../, a backslash ../ and an absolute path to files that exist are refused', () => {
    const root = scratchDir('synbal-onnx-loc-');
    const dir = join(root, 'model');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    const secret = join(root, 'secret.bin');
    copyFileSync(join(MODELS, `${SRC}.data`), secret);
    const model = readFileSync(join(MODELS, SRC));
    const from = Buffer.from(`${SRC}.data`);
    // Locations as long as the fixture's (27 bytes), patched in place; the relative ones name the
    // secret file beside the model's folder, the absolute one a system file.
    const locations = ['./././././././../secret.bin', 'sub/./././../..//secret.bin', '.\\.\\.\\.\\.\\.\\.\\..\\secret.bin', '/'.repeat(17) + 'etc/passwd'];
    locations.forEach((loc, i) => {
      const to = Buffer.from(loc);
      assert.equal(to.length, from.length, loc);
      const patched = Buffer.from(model);
      for (let at = patched.indexOf(from); at >= 0; at = patched.indexOf(from, at + 1)) to.copy(patched, at);
      const path = join(dir, `loc${i}.onnx`);
      writeFileSync(path, patched);
      assert.throws(
        () => onnxFormat.open(path),
        (e: unknown) => e instanceof FileError && e.path === path && e.problem.includes(loc) && /leaves the model's folder; refused/.test(e.problem),
        `${loc} should be refused`,
      );
    });
  });
});
