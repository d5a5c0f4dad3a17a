// TF.js weights-manifest paths that leave the model's folder: `../`, percent-encoded dots and
// separators, backslashes, absolute paths. Such a path once made any file a "shard", read as
// weights and copied into the output folder; now the model is refused when opened (exit 2, one
// line naming the model and the path) and nothing is written.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../server/src/cli';
import { FileError } from '../../server/src/errors/fileError';
import { tfjsFormat } from '../../server/src/formats/tfjs/index';
import { scratchDir } from '../support/scratch';

const FIX = join(__dirname, '..', 'fixtures', 'tfjs');
const MODEL = 'graph_mlp';
const SHARD = 'graph_mlp.group1-shard1of1.bin';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

/**
 * `<scratch>/secret.bin` (a copy of the shard, so reading it as weights would succeed) and
 * `<scratch>/model/graph_mlp.json` whose manifest path is `path(scratch)`.
 */
function hostile(path: (root: string) => string): { root: string; dir: string; model: string; secret: string } {
  const root = scratchDir('synbal-tfjs-outside-');
  const dir = join(root, 'model');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  const secret = join(root, 'secret.bin');
  copyFileSync(join(FIX, SHARD), secret);
  copyFileSync(join(FIX, SHARD), join(dir, SHARD));
  const json = JSON.parse(readFileSync(join(FIX, `${MODEL}.json`), 'utf8'));
  json.weightsManifest[0].paths = [path(root)];
  const model = join(dir, `${MODEL}.json`);
  writeFileSync(model, JSON.stringify(json));
  return { root, dir, model, secret };
}

const TRICKS: [string, (root: string) => string][] = [
  ['../', () => '../secret.bin'],
  ['../ deeper', () => 'sub/../../secret.bin'],
  ['%2e%2e%2f', () => '%2e%2e%2fsecret.bin'],
  ['%2E%2E%2F', () => '%2E%2E%2Fsecret.bin'],
  ['..%2F', () => '..%2Fsecret.bin'],
  ['%2F absolute', (root) => encodeURIComponent(join(root, 'secret.bin'))],
  ['..\\', () => '..\\secret.bin'],
  ['..%5C', () => '..%5Csecret.bin'],
  ['absolute', (root) => join(root, 'secret.bin')],
  ['file URL', (root) => `file://${join(root, 'secret.bin')}`],
];

describe('TF.js manifest paths outside the model folder', () => {
  for (const [name, path] of TRICKS) {
    it(`${name}: refused at open with the path named, exit 2, nothing written`, async () => {
      const h = hostile(path);
      const p = path(h.root);
      assert.throws(() => tfjsFormat.open(h.model), (e: unknown) => e instanceof FileError && e.path === h.model && e.problem.includes(p));
      const before = readdirSync(h.dir).sort();
      for (const extra of [['-o', join(h.dir, 'out.json')], []]) {
        const r = await run(['balance', h.model, ...extra]);
        assert.equal(r.code, 2, r.out + r.err);
        assert.ok(r.err.includes(h.model), r.err);
        assert.ok(r.err.includes(p), r.err);
        assert.equal(r.err.trim().split('\n').length, 1, r.err);
      }
      assert.deepEqual(readdirSync(h.dir).sort(), before);
      assert.deepEqual(readdirSync(h.root).sort(), ['model', 'secret.bin']);
    });
  }

  it('paths inside the folder still work, percent-encoded separators included', async () => {
    const h = hostile(() => `sub%2F${SHARD}`);
    copyFileSync(join(FIX, SHARD), join(h.dir, 'sub', SHARD));
    const cp = tfjsFormat.open(h.model);
    assert.ok(cp.files.some((f) => f.path === join(h.dir, 'sub', SHARD)));
    const r = await run(['balance', h.model, '-o', join(h.dir, 'out.json')]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.ok(readdirSync(h.dir).includes('out.json'));
  });
});
