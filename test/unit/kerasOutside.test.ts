// Keras files whose weights live in other files (test/fixtures/keras/outside.py): HDF5 external
// raw storage, an external link to a dataset, an external link to a group, and a .keras archive
// whose weights file keeps a kernel outside. Balancing one once rewrote the outside file (the
// kept original then read balanced weights); now the file is refused when opened — exit 2, one
// line naming the file and the dataset, nothing written, the outside file's bytes unchanged.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { main } from '../../server/src/cli';
import { FileError } from '../../server/src/errors/fileError';
import { prepareKeras } from '../../server/src/formats/keras/index';
import { writeDatasets } from '../../server/src/formats/keras/writeBack';
import { makeTensor } from '../../server/src/tensor/tensor';
import { fixture, hasPythonH5py } from '../fixtures/keras/helpers';
import { scratchDir } from '../support/scratch';

before(async () => {
  await prepareKeras();
});

const VICTIMS = ['outside_victim.bin', 'outside_victim.h5', 'outside_group_victim.h5', 'outside_keras_victim.bin'];
const CASES: [file: string, message: RegExp][] = [
  ['outside_storage.h5', /dataset \/?model_weights\/dense_1\/dense_1\/kernel:0 keeps its values in another file \(.*outside_victim\.bin: HDF5 external storage\)/],
  ['outside_link.h5', /dataset model_weights\/dense_1\/dense_1\/kernel:0 is an HDF5 external link to .*outside_victim\.h5:\/kernel/],
  ['outside_group.h5', /group model_weights\/dense_1 is an HDF5 external link to .*outside_group_victim\.h5:\/dense_1/],
  ['outside_storage.keras', /dataset \/?layers\/dense_1\/vars\/0 keeps its values in another file \(.*outside_keras_victim\.bin: HDF5 external storage\)/],
];

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

function snapshot(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).map((n) => [n, readFileSync(join(dir, n))]));
}

/** Balances every hostile file in `dir` (with -o, and with the default output name): refused, nothing changed. */
async function refusesAll(dir: string): Promise<void> {
  const before = snapshot(dir);
  for (const [file, message] of CASES) {
    for (const extra of [['-o', join(dir, `balanced_${file}`)], []]) {
      const r = await run(['balance', join(dir, file), ...extra]);
      assert.equal(r.code, 2, `${file}: ${r.out}${r.err}`);
      assert.ok(r.err.includes(join(dir, file)), r.err);
      assert.match(r.err, message);
      assert.match(r.err, /weights kept in other files are refused/);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
  }
  const after = snapshot(dir);
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'no output written');
  for (const [n, bytes] of before) assert.ok(after.get(n)!.equals(bytes), `${n} changed`);
}

describe('Keras weights kept outside the file', () => {
  it('relative paths (committed fixtures): refused at open, exit 2, nothing written, outside files unchanged', async () => {
    const dir = scratchDir('synbal-keras-outside-');
    for (const [file] of CASES) copyFileSync(fixture(file), join(dir, file));
    for (const v of VICTIMS) copyFileSync(fixture(v), join(dir, v));
    await refusesAll(dir);
  });

  it('absolute paths (made by outside.py --absolute): the outside files keep their bytes', { skip: !hasPythonH5py() && 'needs /usr/bin/python3 with h5py' }, async () => {
    const dir = scratchDir('synbal-keras-outside-abs-');
    const r = spawnSync('/usr/bin/python3', [fixture('outside.py'), dir, '--absolute'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    await refusesAll(dir);
  });

  it('the writer refuses too: HDF5 may not open another file while a dataset is written', { skip: !hasPythonH5py() && 'needs /usr/bin/python3 with h5py' }, () => {
    const dir = scratchDir('synbal-keras-outside-write-');
    const r = spawnSync('/usr/bin/python3', [fixture('outside.py'), dir, '--absolute'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const victim = readFileSync(join(dir, 'outside_victim.bin'));
    const copy = join(dir, 'copy.h5');
    copyFileSync(join(dir, 'outside_storage.h5'), copy);
    const tensor = makeTensor('dense_1/kernel:0', 'float32', [8, 7], new Float32Array(56).fill(42));
    assert.throws(
      () => writeDatasets(copy, [{ dataset: 'model_weights/dense_1/dense_1/kernel:0', tensor }], copy),
      (e: unknown) => e instanceof FileError && /keeps its values in another file .*outside_victim\.bin/.test(e.problem),
    );
    assert.ok(readFileSync(join(dir, 'outside_victim.bin')).equals(victim));
  });
});
