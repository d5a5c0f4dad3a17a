// Keras 2 `.h5` and Keras 3 `.keras` files: reading, writing back, and bad input.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, openSync, closeSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { bytesOf, loadTensor, type Checkpoint } from '../../server/src/formats/core/checkpoint';
import { kerasH5Format, kerasZipFormat, prepareKeras, isHdf5, kerasStructureOf } from '../../server/src/formats/keras/index';
import { firstZipEntryName, readZipEntry, readZipFileDirectory, writeZip, type ZipItem } from '../../server/src/formats/zip';
import { snakeCase } from '../../server/src/formats/keras/variables';
import type { Tensor } from '../../server/src/tensor/tensor';
import { fixture, hasPythonH5py, python, scratch } from '../fixtures/keras/helpers';

before(async () => {
  await prepareKeras();
});

function head(path: string): Buffer {
  return readFileSync(path).subarray(0, 4096);
}

function values(cp: Checkpoint, name: string): number[] {
  const e = cp.tensors.find((t) => t.name === name);
  assert.ok(e, `no tensor ${name}`);
  return Array.from(loadTensor(e).data, Number);
}

function scaled(t: Tensor, f: number): Tensor {
  return { ...t, data: Float32Array.from(t.data, (v) => v * f) };
}

function rejects(fn: () => unknown, path: string, pattern: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e.message.startsWith(path), `message should start with the path: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('Keras format detection', () => {
  it('tell HDF5, .keras archives and npz archives apart by their bytes', () => {
    assert.ok(isHdf5(head(fixture('mlp_seq.h5'))));
    assert.ok(kerasH5Format.sniff(head(fixture('cnn_bn.h5')), 'x'));
    assert.ok(!kerasH5Format.sniff(head(fixture('cnn_bn.keras')), 'x'));
    assert.equal(firstZipEntryName(head(fixture('cnn_bn.keras'))), 'metadata.json');
    assert.ok(kerasZipFormat.sniff(head(fixture('cnn_bn.keras')), 'model.bin'));
    assert.ok(!kerasZipFormat.sniff(head(fixture('state.npz')), 'state.npz'));
    assert.ok(!kerasZipFormat.sniff(head(fixture('weights.npy')), 'w.keras'));
  });

  it('name Keras 3 weight groups as Keras does (naming.to_snake_case)', () => {
    assert.deepEqual(
      ['Conv2D', 'BatchNormalization', 'DepthwiseConv2D', 'Conv2DTranspose', 'PReLU', 'LeakyReLU', 'MaxPooling2D', 'Dense'].map(snakeCase),
      ['conv2d', 'batch_normalization', 'depthwise_conv2d', 'conv2d_transpose', 'p_re_lu', 'leaky_re_lu', 'max_pooling2d', 'dense'],
    );
  });
});

describe('Keras 2 .h5 files', () => {
  it('read weights in layer order (layer_names split in two attributes), named by their HDF5 path', () => {
    const cp = kerasH5Format.open(fixture('mlp_seq.h5'));
    assert.equal(cp.format, 'keras-h5');
    assert.deepEqual(cp.tensors.map((t) => `${t.name} [${t.shape}]`), [
      'dense/dense/kernel:0 [6,8]',
      'dense/dense/bias:0 [8]',
      'dense_1/dense_1/kernel:0 [8,7]',
      'dense_1/dense_1/bias:0 [7]',
      'dense_2/dense_2/kernel:0 [7,3]',
      'dense_2/dense_2/bias:0 [3]',
    ]);
    for (const t of cp.tensors) {
      assert.equal(t.dtype, 'float32');
      assert.equal(t.encoding, 'hdf5');
      assert.equal(t.decoded?.data.length, t.shape.reduce((a, b) => a * b, 1));
    }
    const s = kerasStructureOf(cp);
    assert.equal(s.kerasVersion, '2.11.0');
    assert.equal(s.model.className, 'Sequential');
    assert.deepEqual(s.model.layers.map((l) => l.className), ['InputLayer', 'Dense', 'Dense', 'LeakyReLU', 'Dropout', 'Dense']);
    assert.deepEqual(s.weights.find((w) => w.tensor === 'dense_1/dense_1/bias:0'), { layer: 'dense_1', role: 'bias', tensor: 'dense_1/dense_1/bias:0', dataset: 'model_weights/dense_1/dense_1/bias:0' });
    assert.deepEqual(cp.warnings, []);
  });

  it('take Keras 1 weight names ("dense_W") in Keras order', () => {
    const cp = kerasH5Format.open(fixture('keras1_names.h5'));
    assert.deepEqual(kerasStructureOf(cp).weights.slice(0, 2).map((w) => [w.tensor, w.role]), [['dense/dense_W', 'kernel'], ['dense/dense_b', 'bias']]);
    assert.match(cp.warnings[0], /layer dense: weight names dense_W, dense_b do not say what they are; taken in Keras' order \(kernel, bias\)/);
  });

  it('ignore optimizer state', () => {
    const cp = kerasH5Format.open(fixture('cnn_bn.h5'));
    assert.equal(cp.tensors.length, 11);
    assert.ok(cp.tensors.every((t) => !t.name.includes('Adam')));
    assert.deepEqual(kerasStructureOf(cp).weights.filter((w) => w.layer === 'batch_normalization').map((w) => w.role), ['gamma', 'beta', 'moving_mean', 'moving_variance']);
  });

  it('read weights stored gzip-compressed, big-endian or as float64, and write them back', () => {
    const dir = scratch('mlp_storage.h5');
    const cp = kerasH5Format.open(join(dir, 'mlp_storage.h5'));
    const plain = kerasH5Format.open(fixture('mlp_seq.h5'));
    assert.deepEqual(cp.tensors.map((t) => t.dtype), ['float32', 'float32', 'float32', 'float32', 'float64', 'float64']);
    cp.tensors.forEach((t, i) => assert.deepEqual(values(cp, t.name), values(plain, plain.tensors[i].name)));
    const changed = new Map<string, Tensor>();
    for (const e of cp.tensors.filter((t) => t.name.endsWith('kernel:0'))) {
      const t = loadTensor(e);
      changed.set(e.name, { ...t, data: t.data.map((v: number) => v * 4) as Tensor['data'] });
    }
    const target = join(dir, 'out.h5');
    kerasH5Format.write(cp, changed, target);
    const again = kerasH5Format.open(target);
    for (const [name, t] of changed) assert.deepEqual(values(again, name), Array.from(t.data, Number));
    if (hasPythonH5py()) {
      const out = python(
        'import h5py,sys,json; f=h5py.File(sys.argv[1]); g=f["model_weights"]; print(json.dumps([[str(g[k].dtype), g[k].compression, g[k][...].reshape(-1).tolist()] for k in ("dense/dense/kernel:0", "dense_1/dense_1/kernel:0")]))',
        target,
      );
      const [gz, be] = JSON.parse(out);
      assert.deepEqual([gz[0], gz[1], be[0], be[1]], ['float32', 'gzip', '>f4', null]);
      assert.deepEqual(gz[2], values(again, 'dense/dense/kernel:0'));
      assert.deepEqual(be[2], values(again, 'dense_1/dense_1/kernel:0'));
    }
  });

  it('write a copy where only the changed datasets differ', () => {
    const dir = scratch('cnn_bn.h5');
    const src = join(dir, 'cnn_bn.h5');
    const cp = kerasH5Format.open(src);
    const name = 'conv2d_1/conv2d_1/kernel:0';
    const t = loadTensor(cp.tensors.find((e) => e.name === name)!);
    const target = join(dir, 'out.h5');
    assert.deepEqual(kerasH5Format.write(cp, new Map([[name, scaled(t, 2)]]), target), [target]);
    const a = readFileSync(src);
    const b = readFileSync(target);
    assert.equal(a.length, b.length);
    let differing = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differing++;
    assert.ok(differing > 0 && differing <= t.data.length * 4, `${differing} bytes differ`);
    const again = kerasH5Format.open(target);
    for (const e of cp.tensors) {
      const want = e.name === name ? Array.from(t.data, (v) => v * 2) : values(cp, e.name);
      assert.deepEqual(values(again, e.name), want, e.name);
    }
    assert.deepEqual(readdirSync(dir).sort(), ['cnn_bn.h5', 'out.h5']);
  });

  it('replace the file itself, keeping a backup when asked', () => {
    const dir = scratch('mlp_seq.h5');
    const src = join(dir, 'mlp_seq.h5');
    const before = readFileSync(src);
    const cp = kerasH5Format.open(src);
    const t = loadTensor(cp.tensors[0]);
    kerasH5Format.write(cp, new Map([[t.name, scaled(t, -1)]]), src, { backup: true });
    assert.ok(readFileSync(`${src}.bak`).equals(before));
    assert.deepEqual(values(kerasH5Format.open(src), t.name), Array.from(t.data, (v) => -v));
  });

  it('can be read back by h5py (optional: needs Debian python3-h5py)', { skip: !hasPythonH5py() && 'no /usr/bin/python3 with h5py' }, () => {
    const dir = scratch('mlp_seq.h5');
    const cp = kerasH5Format.open(join(dir, 'mlp_seq.h5'));
    const t = loadTensor(cp.tensors[2]);
    const target = join(dir, 'out.h5');
    kerasH5Format.write(cp, new Map([[t.name, scaled(t, 0.5)]]), target);
    const out = python('import h5py,sys,json; f=h5py.File(sys.argv[1]); print(json.dumps(f["model_weights/dense_1/dense_1/kernel:0"][...].reshape(-1).tolist()))', target);
    assert.deepEqual(JSON.parse(out), Array.from(t.data, (v) => Math.fround(v * 0.5)));
  });

  it('refuse replacements that do not fit', () => {
    const dir = scratch('mlp_seq.h5');
    const cp = kerasH5Format.open(join(dir, 'mlp_seq.h5'));
    const t = loadTensor(cp.tensors[0]);
    const target = join(dir, 'out.h5');
    assert.throws(() => kerasH5Format.write(cp, new Map([['nope', t]]), target), /no tensor nope/);
    assert.throws(() => kerasH5Format.write(cp, new Map([[t.name, { ...t, data: new Float32Array(3) }]]), target), /shape/);
    assert.throws(() => kerasH5Format.write(cp, new Map([[t.name, { ...t, dtype: 'float64', data: new Float64Array(t.data.length) }]]), target), /float32/);
    assert.ok(!existsSync(target));
  });
});

describe('Keras 3 .keras archives', () => {
  it('map class-numbered weight paths to layers that have other names', () => {
    const k3 = kerasZipFormat.open(fixture('cnn_bn.keras'));
    const k2 = kerasH5Format.open(fixture('cnn_bn.h5'));
    const s = kerasStructureOf(k3);
    assert.equal(s.kerasVersion, '3.3.3');
    assert.equal(s.model.generation, 3);
    assert.deepEqual(s.weights.map((w) => `${w.tensor} ← ${w.dataset}`).slice(0, 6), [
      'stem/kernel ← layers/conv2d/vars/0',
      'stem_bn/gamma ← layers/batch_normalization/vars/0',
      'stem_bn/beta ← layers/batch_normalization/vars/1',
      'stem_bn/moving_mean ← layers/batch_normalization/vars/2',
      'stem_bn/moving_variance ← layers/batch_normalization/vars/3',
      'body/kernel ← layers/conv2d_1/vars/0',
    ]);
    // The same weights as the Keras 2 file of the same model, in the same order.
    assert.equal(k3.tensors.length, k2.tensors.length);
    k3.tensors.forEach((t, i) => assert.deepEqual(values(k3, t.name), values(k2, k2.tensors[i].name)));
  });

  it('read a Sequential archive (its InputLayer has no weight group)', () => {
    const cp = kerasZipFormat.open(fixture('mlp_seq.keras'));
    assert.deepEqual(cp.tensors.map((t) => t.name), ['dense/kernel', 'dense/bias', 'dense_1/kernel', 'dense_1/bias', 'dense_2/kernel', 'dense_2/bias']);
  });

  it('write a new archive: other entries byte for byte, the weights rewritten', () => {
    const dir = scratch('cnn_bn.keras');
    const src = join(dir, 'cnn_bn.keras');
    const cp = kerasZipFormat.open(src);
    const t = loadTensor(cp.tensors.find((e) => e.name === 'fc/kernel')!);
    const target = join(dir, 'out.keras');
    kerasZipFormat.write(cp, new Map([[t.name, scaled(t, 3)]]), target);
    const before = readZipFileDirectory(src).entries;
    const after = readZipFileDirectory(target).entries;
    assert.deepEqual(after.map((e) => [e.name, e.method]), before.map((e) => [e.name, e.method]));
    for (const name of ['metadata.json', 'config.json']) {
      assert.ok(readZipEntry(target, after.find((e) => e.name === name)!).equals(readZipEntry(src, before.find((e) => e.name === name)!)));
    }
    const again = kerasZipFormat.open(target);
    for (const e of cp.tensors) {
      const want = e.name === t.name ? Array.from(t.data, (v) => Math.fround(v * 3)) : values(cp, e.name);
      assert.deepEqual(values(again, e.name), want, e.name);
    }
  });

  it('can be read back by Python zipfile and h5py (optional)', { skip: !hasPythonH5py() && 'no /usr/bin/python3 with h5py' }, () => {
    const dir = scratch('mlp_seq.keras');
    const cp = kerasZipFormat.open(join(dir, 'mlp_seq.keras'));
    const t = loadTensor(cp.tensors[0]);
    const target = join(dir, 'out.keras');
    kerasZipFormat.write(cp, new Map([[t.name, scaled(t, 2)]]), target);
    const out = python(
      'import zipfile,io,h5py,sys,json; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; f=h5py.File(io.BytesIO(z.read("model.weights.h5"))); print(json.dumps(f["layers/dense/vars/0"][...].reshape(-1).tolist()))',
      target,
    );
    assert.deepEqual(JSON.parse(out), Array.from(t.data, (v) => Math.fround(v * 2)));
  });
});

describe('bad Keras input', () => {
  it('a truncated .h5', () => {
    const dir = scratch();
    const p = join(dir, 'cut.h5');
    writeFileSync(p, readFileSync(fixture('mlp_seq.h5')).subarray(0, 3000));
    rejects(() => kerasH5Format.open(p), p, /truncated/);
  });

  it('a file that is not HDF5', () => {
    const dir = scratch();
    const p = join(dir, 'text.h5');
    writeFileSync(p, 'hello, not hdf5\n');
    rejects(() => kerasH5Format.open(p), p, /not a readable HDF5 file/);
  });

  it('a missing file', () => {
    const p = join(scratch(), 'missing.h5');
    rejects(() => kerasH5Format.open(p), p, /ENOENT/);
  });

  it('weights without a model config', () => {
    rejects(() => kerasH5Format.open(fixture('weights_only.h5')), fixture('weights_only.h5'), /without a model \(no "model_config"/);
  });

  it('a config that needs a weight the file lacks', () => {
    rejects(() => kerasH5Format.open(fixture('missing_bias.h5')), fixture('missing_bias.h5'), /layer dense_1 \(Dense\) needs a "bias" weight/);
  });

  it('a truncated .keras archive', () => {
    const dir = scratch();
    const p = join(dir, 'cut.keras');
    writeFileSync(p, readFileSync(fixture('cnn_bn.keras')).subarray(0, 20000));
    rejects(() => kerasZipFormat.open(p), p, /end-of-central-directory|truncated/);
  });

  it('a damaged config.json (CRC-32)', () => {
    const dir = scratch('mlp_seq.keras');
    const p = join(dir, 'mlp_seq.keras');
    const e = readZipFileDirectory(p).entries.find((x) => x.name === 'config.json')!;
    const buf = readFileSync(p);
    buf[e.dataStart + 10] ^= 0x20;
    writeFileSync(p, buf);
    rejects(() => kerasZipFormat.open(p), p, /CRC-32/);
  });

  /** An archive with the fixture's other entries and a replaced (or missing) config.json. */
  function withConfig(config: unknown, dropWeights = false): string {
    const dir = scratch();
    const src = fixture('cnn_bn.keras');
    const p = join(dir, 'edited.keras');
    const items: ZipItem[] = readZipFileDirectory(src)
      .entries.filter((e) => !(dropWeights && e.name === 'model.weights.h5'))
      .map((e) => (e.name === 'config.json' ? { name: e.name, method: 0, data: Buffer.from(JSON.stringify(config)), dosTime: 0, dosDate: 33 } : { copy: e, from: src }));
    const fd = openSync(p, 'w');
    writeZip(fd, items);
    closeSync(fd);
    return p;
  }

  it('an archive without weights', () => {
    const config = JSON.parse(readZipEntry(fixture('cnn_bn.keras'), readZipFileDirectory(fixture('cnn_bn.keras')).entries.find((e) => e.name === 'config.json')!).toString());
    const p = withConfig(config, true);
    rejects(() => kerasZipFormat.open(p), p, /no model\.weights\.h5/);
  });

  it('a subclassed model (no layer list in its config)', () => {
    const p = withConfig({ module: 'my', class_name: 'MyModel', config: {} });
    rejects(() => kerasZipFormat.open(p), p, /MyModel; only Sequential and functional models/);
  });

  it('a config.json that is not JSON', () => {
    const dir = scratch();
    const p = join(dir, 'bad.keras');
    const fd = openSync(p, 'w');
    writeZip(fd, [{ name: 'config.json', method: 8, data: Buffer.from('{"class_name": '), dosTime: 0, dosDate: 33 }]);
    closeSync(fd);
    rejects(() => kerasZipFormat.open(p), p, /config\.json is not valid JSON/);
  });

  it('a config whose layers name the wrong weights', () => {
    const cfg = JSON.parse(readZipEntry(fixture('cnn_bn.keras'), readZipFileDirectory(fixture('cnn_bn.keras')).entries.find((e) => e.name === 'config.json')!).toString());
    // An extra Dense layer: Keras would look for layers/dense_2, which the weights file lacks.
    cfg.config.layers.push({ module: 'keras.layers', class_name: 'Dense', name: 'extra', config: { name: 'extra', units: 2, use_bias: true }, inbound_nodes: [{ args: [{ class_name: '__keras_tensor__', config: { keras_history: ['logits', 0, 0] } }], kwargs: {} }] });
    const p = withConfig(cfg);
    rejects(() => kerasZipFormat.open(p), p, /layer extra \(Dense\) has no weights in model\.weights\.h5/);
  });

  it('writes nothing when the source changed since it was opened', () => {
    const dir = scratch('mlp_seq.h5');
    const src = join(dir, 'mlp_seq.h5');
    const cp = kerasH5Format.open(src);
    writeFileSync(src, Buffer.concat([readFileSync(src), Buffer.from([0])]));
    const t = loadTensor(cp.tensors[0]);
    assert.throws(() => kerasH5Format.write(cp, new Map([[t.name, t]]), join(dir, 'out.h5')), /changed while it was being read/);
    assert.ok(!existsSync(join(dir, 'out.h5')));
    assert.ok(bytesOf(t).length > 0);
  });
});
