// Sharded safetensors: the Hugging Face-style index over two shards, read as one checkpoint
// and written as a new index with renamed, patched shards.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadTensor, readRange } from '../../server/src/formats/core/checkpoint';
import { safetensorsFormat } from '../../server/src/formats/safetensors';
import { safetensorsIndexFormat, shardTargetName, type SafetensorsIndexStructure } from '../../server/src/formats/safetensors/sharded';
import type { Tensor } from '../../server/src/tensor/tensor';
import { FileError } from '../../server/src/errors/fileError';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const INDEX = join(MODELS, 'cnn_bn_sharded.safetensors.index.json');
const SHARDS = ['cnn_bn_sharded-00001-of-00002.safetensors', 'cnn_bn_sharded-00002-of-00002.safetensors'];
const work = scratchDir('synbal-sti-');
after(() => rmSync(work, { recursive: true, force: true }));
let serial = 0;

/** A private copy of the fixture set, so tests can damage it. */
function copySet(): string {
  const dir = join(work, `set${serial++}`);
  mkdirSync(dir);
  for (const f of [basename(INDEX), ...SHARDS]) copyFileSync(join(MODELS, f), join(dir, f));
  return join(dir, basename(INDEX));
}

const scaled = (t: Tensor, k: number): Tensor => ({ ...t, data: (t.data as Float32Array).map((x) => x * k) });

describe('sharded safetensors', () => {
  it('sniffed by name and content; all 18 tensors in weight_map order, same bytes as cnn_bn.safetensors', () => {
    const head = readFileSync(INDEX).subarray(0, 4096);
    assert.equal(safetensorsIndexFormat.sniff(head, INDEX), true);
    assert.equal(safetensorsFormat.sniff(head, INDEX), false);
    assert.equal(safetensorsIndexFormat.sniff(Buffer.from('{"weight_map": {"a": "x.bin"}}'), 'pytorch_model.bin.index.json'), false);
    const cp = safetensorsIndexFormat.open(INDEX);
    assert.equal(cp.format, 'safetensors-index');
    const whole = safetensorsFormat.open(join(MODELS, 'cnn_bn.safetensors'));
    assert.deepEqual(cp.tensors.map((t) => t.name), whole.tensors.map((t) => t.name));
    assert.deepEqual(cp.files.map((f) => basename(f.path)), [basename(INDEX), ...SHARDS]);
    for (const t of cp.tensors) {
      const o = whole.tensors.find((x) => x.name === t.name)!;
      assert.ok(readRange(t.file, t.offset, t.byteLength).equals(readRange(o.file, o.offset, o.byteLength)), t.name);
    }
    const s = cp.structure as SafetensorsIndexStructure;
    assert.equal(s.metadata?.total_size, 11132);
    assert.deepEqual(s.shards.map((x) => x.file), SHARDS);
    assert.equal(s.weightMap['10.bias'], SHARDS[1]);
  });

  it('writes a new index and renamed shards; only the changed tensors differ', () => {
    const cp = safetensorsIndexFormat.open(INDEX);
    const changed = new Map([
      ['0.weight', scaled(loadTensor(cp.tensors.find((t) => t.name === '0.weight')!), 2)],
      ['8.weight', scaled(loadTensor(cp.tensors.find((t) => t.name === '8.weight')!), 0.5)],
    ]);
    const outDir = join(work, 'out');
    mkdirSync(outDir);
    const target = join(outDir, 'x.balanced.safetensors.index.json');
    const written = safetensorsIndexFormat.write(cp, changed, target);
    assert.deepEqual(written.map((p) => basename(p)), ['x.balanced.safetensors.index.json', 'x.balanced-00001-of-00002.safetensors', 'x.balanced-00002-of-00002.safetensors']);
    assert.deepEqual(readdirSync(outDir).sort(), written.map((p) => basename(p)).sort());
    const index = JSON.parse(readFileSync(target, 'utf8'));
    assert.deepEqual(index.metadata, { total_size: 11132 });
    assert.equal(index.weight_map['0.weight'], 'x.balanced-00001-of-00002.safetensors');

    const back = safetensorsIndexFormat.open(target);
    for (const t of back.tensors) {
      const want = changed.get(t.name);
      const orig = cp.tensors.find((x) => x.name === t.name)!;
      if (want) assert.deepEqual(Array.from(loadTensor(t).data), Array.from(want.data));
      else assert.ok(readRange(t.file, t.offset, t.byteLength).equals(readRange(orig.file, orig.offset, orig.byteLength)), t.name);
    }
    SHARDS.forEach((shard, i) => {
      const a = readFileSync(join(MODELS, shard));
      const b = readFileSync(written[i + 1]);
      assert.equal(a.length, b.length);
      const ranges = cp.tensors.filter((t) => changed.has(t.name) && basename(t.file) === shard);
      for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) assert.ok(ranges.some((r) => k >= r.offset && k < r.offset + r.byteLength), `${shard} byte ${k}`);
    });
  });

  it('writing over the index itself: new shards under fresh names, the index switched last; the old set kept as the .bak', () => {
    const index = copySet();
    const cp = safetensorsIndexFormat.open(index);
    const w = scaled(loadTensor(cp.tensors.find((t) => t.name === '10.weight')!), 3);
    const written = safetensorsIndexFormat.write(cp, new Map([['10.weight', w]]), index, { backup: true });
    assert.equal(written[0], index);
    for (const p of written.slice(1)) assert.match(basename(p), new RegExp(`^cnn_bn_sharded\\.synbal-${process.pid}-\\d+-0000[12]-of-00002\\.safetensors$`));
    // The old index is the .bak, and the shards it names are untouched.
    assert.ok(readFileSync(`${index}.bak`).equals(readFileSync(INDEX)));
    for (const f of SHARDS) assert.ok(readFileSync(join(index, '..', f)).equals(readFileSync(join(MODELS, f))), f);
    const back = safetensorsIndexFormat.open(index);
    assert.deepEqual(Array.from(loadTensor(back.tensors.find((t) => t.name === '10.weight')!).data), Array.from(w.data));
    // Two more writes: the .bak names the previous set, and this tool's shards that neither the
    // index nor its .bak names go (the user's own original shards stay).
    const second = safetensorsIndexFormat.write(back, new Map(), index, { backup: true });
    const third = safetensorsIndexFormat.write(safetensorsIndexFormat.open(index), new Map(), index, { backup: true });
    const left = readdirSync(join(index, '..')).sort();
    assert.deepEqual(left, [basename(INDEX), `${basename(INDEX)}.bak`, ...SHARDS, ...second.slice(1).map((p) => basename(p)), ...third.slice(1).map((p) => basename(p))].sort());
  });

  it('shard names for shards that do not follow the -0000N-of-0000M pattern', () => {
    assert.equal(shardTargetName('m.balanced', 'model-00002-of-00003.safetensors', 1, 3), 'm.balanced-00002-of-00003.safetensors');
    assert.equal(shardTargetName('m.balanced', 'part_b.safetensors', 1, 2), 'm.balanced-00002-of-00002.safetensors');
  });

  it('refuses a target that is not an index name, writing nothing', () => {
    const cp = safetensorsIndexFormat.open(INDEX);
    const dir = join(work, 'refuse');
    mkdirSync(dir);
    assert.throws(() => safetensorsIndexFormat.write(cp, new Map(), join(dir, 'x.safetensors')), /must end in \.safetensors\.index\.json/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('damaged sets: missing shard, tensor not in its shard, paths out of the folder, bad JSON', () => {
    const cases: [string, (index: string) => void, RegExp][] = [
      ['missing shard', (index) => rmSync(join(index, '..', SHARDS[1])), /shard cnn_bn_sharded-00002-of-00002\.safetensors \(named in weight_map\) does not exist/],
      ['wrong shard', (index) => {
        const doc = JSON.parse(readFileSync(index, 'utf8'));
        doc.weight_map['10.bias'] = SHARDS[0];
        writeFileSync(index, JSON.stringify(doc));
      }, /tensor 10\.bias is mapped to shard cnn_bn_sharded-00001-of-00002\.safetensors, which does not contain it/],
      ['escaping path', (index) => {
        const doc = JSON.parse(readFileSync(index, 'utf8'));
        doc.weight_map['10.bias'] = '../../etc/passwd';
        writeFileSync(index, JSON.stringify(doc));
      }, /points outside the index's folder/],
      ['bad JSON', (index) => writeFileSync(index, '{"weight_map": '), /not valid JSON/],
      ['no weight_map', (index) => writeFileSync(index, '{"metadata": {}}'), /no "weight_map" object/],
      ['damaged shard', (index) => writeFileSync(join(index, '..', SHARDS[0]), Buffer.from([9, 9, 9, 9])), /shard .*too short/],
    ];
    for (const [what, damage, re] of cases) {
      const index = copySet();
      damage(index);
      assert.throws(() => safetensorsIndexFormat.open(index), (e: Error) => (e.constructor as unknown) === FileError && e.message.startsWith(`${index}: `) && re.test(e.message), what);
    }
  });

  it('a shard tensor missing from weight_map is included with a warning', () => {
    const index = copySet();
    const doc = JSON.parse(readFileSync(index, 'utf8'));
    delete doc.weight_map['10.bias'];
    writeFileSync(index, JSON.stringify(doc));
    const cp = safetensorsIndexFormat.open(index);
    assert.equal(cp.tensors.length, 18);
    assert.match(cp.warnings.join('\n'), /tensor 10\.bias is in shard .* but not in the weight_map/);
    assert.equal(existsSync(index), true);
  });
});
