// NumPy .npy arrays and .npz archives: byte ranges, decoding (big-endian, Fortran order,
// deflate), writing back in the file's own layout, and bad input.
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analyze } from '../../server/src/engine/analyze';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { loadTensor, readRange, type Checkpoint } from '../../server/src/formats/core/checkpoint';
import { readZipFileDirectory, verifyZip, writeZip } from '../../server/src/formats/zip';
import { npyFormat, npzFormat, parseNpyHeader } from '../../server/src/formats/numpy';
import { networkOf } from '../../server/src/formats/registry';
import { makeTensor, tensorValues, type Tensor } from '../../server/src/tensor/tensor';
import { fixture, hasPythonH5py, python, scratch } from '../fixtures/keras/helpers';

const VALUES: Record<string, { shape: number[]; values: number[] }> = JSON.parse(readFileSync(fixture('numpy_values.json'), 'utf8'));

function valuesOf(cp: Checkpoint, name: string): number[] {
  return Array.from(tensorValues(loadTensor(cp.tensors.find((t) => t.name === name)!)));
}

function close(a: number[], b: number[], tol = 0): void {
  assert.equal(a.length, b.length);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `element ${i}: ${v} vs ${b[i]}`));
}

function times(t: Tensor, f: number): Tensor {
  return makeTensor(t.name, t.dtype, t.shape, Array.from(tensorValues(t), (v) => v * f));
}

function rejects(fn: () => unknown, path: string, pattern: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e.message.startsWith(path), `message should start with the path: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** A .npy file from a header dict text and data bytes (version 1.0, padded as numpy pads). */
function npy(dict: string, data: Buffer): Buffer {
  let header = dict;
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
}

describe('.npy arrays', () => {
  it('a little-endian C-order array is a plain byte range', () => {
    const cp = npyFormat.open(fixture('weights.npy'));
    assert.equal(cp.format, 'npy');
    const [e] = cp.tensors;
    assert.deepEqual([e.name, e.dtype, e.shape, e.offset, e.byteLength, e.encoding, e.decoded], ['weights', 'float32', [4, 5], 128, 80, undefined, undefined]);
    close(valuesOf(cp, 'weights'), VALUES.weights.values);
  });

  it('decode Fortran order, big-endian and float16 arrays', () => {
    const f = npyFormat.open(fixture('fortran.npy'));
    assert.equal(f.tensors[0].encoding, 'npy:fortran-order');
    assert.deepEqual(f.tensors[0].shape, [3, 4]);
    close(valuesOf(f, 'fortran'), VALUES.fortran.values);
    const be = npyFormat.open(fixture('bigendian.npy'));
    assert.equal(be.tensors[0].encoding, 'npy:big-endian');
    close(valuesOf(be, 'bigendian'), VALUES.bigendian.values);
    const h = npyFormat.open(fixture('half.npy'));
    assert.equal(h.tensors[0].dtype, 'float16');
    close(valuesOf(h, 'half'), VALUES.half.values);
  });

  for (const name of ['weights', 'fortran', 'bigendian', 'half']) {
    it(`write ${name}.npy back in its own layout`, () => {
      const dir = scratch(`${name}.npy`);
      const src = join(dir, `${name}.npy`);
      const cp = npyFormat.open(src);
      const t = loadTensor(cp.tensors[0]);
      const target = join(dir, 'out.npy');
      npyFormat.write(cp, new Map([[t.name, times(t, -2)]]), target);
      const a = readFileSync(src);
      const b = readFileSync(target);
      const dataStart = a.length - cp.tensors[0].byteLength;
      assert.ok(a.subarray(0, dataStart).equals(b.subarray(0, dataStart)), 'the header is kept');
      const again = npyFormat.open(target);
      assert.equal(again.tensors[0].encoding, cp.tensors[0].encoding);
      close(valuesOf(again, 'out'), VALUES[name].values.map((v) => -2 * v), name === 'half' ? 1e-3 : 1e-6);
      if (hasPythonH5py()) {
        const got = JSON.parse(python('import numpy as np,sys,json; print(json.dumps(np.load(sys.argv[1]).reshape(-1).tolist()))', target));
        close(got, valuesOf(again, 'out'));
      }
    });
  }
});

describe('.npz archives', () => {
  it('stored entries are byte ranges inside the archive; deflated ones are decoded', () => {
    const s = npzFormat.open(fixture('state.npz'));
    const c = npzFormat.open(fixture('state_compressed.npz'));
    assert.deepEqual(s.tensors.map((t) => t.name), ['0.weight', '0.bias', '2.weight', '2.bias', 'steps']);
    assert.deepEqual(c.tensors.map((t) => t.name), s.tensors.map((t) => t.name));
    for (const name of ['0.weight', '0.bias', '2.weight', '2.bias']) {
      const e = s.tensors.find((t) => t.name === name)!;
      assert.equal(e.encoding, undefined);
      assert.equal(e.decoded, undefined);
      assert.equal(c.tensors.find((t) => t.name === name)!.encoding, 'npy:deflate');
      close(valuesOf(s, name), VALUES[name].values);
      close(valuesOf(c, name), VALUES[name].values);
    }
    const steps = s.tensors.find((t) => t.name === 'steps')!;
    assert.equal(steps.dtype, 'int64');
    assert.match(steps.readOnlyReason ?? '', /never rewritten/);
    const w = s.tensors[0];
    assert.ok(readRange(w.file, w.offset, w.byteLength).equals(Buffer.from(Float32Array.from(VALUES['0.weight'].values).buffer)));
  });

  it('a state dict in an npz gets its network from the naming conventions', () => {
    const { network } = networkOf(npzFormat.open(fixture('state.npz')), { defaultActivation: 'relu' });
    assert.equal(analyze(compile(network, lp(2))).balanceable, 8);
  });

  for (const file of ['state.npz', 'state_compressed.npz']) {
    it(`${file}: rewrite the changed arrays, copy the others entry for entry`, () => {
      const dir = scratch(file);
      const src = join(dir, file);
      const cp = npzFormat.open(src);
      const t = loadTensor(cp.tensors.find((e) => e.name === '2.weight')!);
      const target = join(dir, 'out.npz');
      npzFormat.write(cp, new Map([['2.weight', times(t, 0.5)]]), target);
      verifyZip(target);
      const before = readZipFileDirectory(src).entries;
      const after = readZipFileDirectory(target).entries;
      assert.deepEqual(after.map((e) => [e.name, e.method]), before.map((e) => [e.name, e.method]));
      for (const e of after) {
        const b = before.find((x) => x.name === e.name)!;
        if (e.name === '2.weight.npy') assert.notEqual(e.crc, b.crc);
        else assert.ok(readRange(target, e.dataStart, e.compressedSize).equals(readRange(src, b.dataStart, b.compressedSize)), e.name);
      }
      const again = npzFormat.open(target);
      close(valuesOf(again, '2.weight'), VALUES['2.weight'].values.map((v) => v / 2), 1e-7);
      for (const name of ['0.weight', '0.bias', '2.bias']) close(valuesOf(again, name), VALUES[name].values);
      if (hasPythonH5py()) {
        const got = JSON.parse(python('import numpy as np,sys,json; z=np.load(sys.argv[1]); print(json.dumps({k: z[k].reshape(-1).tolist() for k in z.files}))', target));
        close(got['2.weight'], valuesOf(again, '2.weight'));
        assert.deepEqual(got.steps, [7]);
      }
    });
  }

  it('never rewrite integer arrays, and refuse misfits', () => {
    const dir = scratch('state.npz');
    const cp = npzFormat.open(join(dir, 'state.npz'));
    const target = join(dir, 'out.npz');
    assert.throws(() => npzFormat.write(cp, new Map([['steps', makeTensor('steps', 'float64', [1], [1])]]), target), /cannot be rewritten/);
    assert.throws(() => npzFormat.write(cp, new Map([['0.bias', makeTensor('0.bias', 'float32', [3], [1, 2, 3])]]), target), /shape/);
    assert.throws(() => npzFormat.write(cp, new Map([['nope', makeTensor('nope', 'float32', [1], [1])]]), target), /no array nope/);
    assert.ok(!existsSync(target));
  });
});

describe('bad NumPy input', () => {
  it('wrong magic', () => {
    const p = join(scratch(), 'bad.npy');
    writeFileSync(p, 'not numpy at all');
    rejects(() => npyFormat.open(p), p, /wrong magic/);
  });

  it('a truncated array', () => {
    const p = join(scratch(), 'cut.npy');
    writeFileSync(p, readFileSync(fixture('weights.npy')).subarray(0, 150));
    rejects(() => npyFormat.open(p), p, /needs 80 bytes of data, but only 22 follow the header/);
  });

  it('a truncated header', () => {
    const p = join(scratch(), 'cut.npy');
    writeFileSync(p, readFileSync(fixture('weights.npy')).subarray(0, 40));
    rejects(() => npyFormat.open(p), p, /header is truncated/);
  });

  it('an absurd shape', () => {
    const p = join(scratch(), 'huge.npy');
    writeFileSync(p, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 100000000000), }", Buffer.alloc(16)));
    rejects(() => npyFormat.open(p), p, /needs 4e\+22 bytes|impossible/);
    writeFileSync(p, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", Buffer.alloc(16)));
    rejects(() => npyFormat.open(p), p, /impossible shape/);
  });

  it('structured arrays', () => {
    const p = join(scratch(), 'rec.npy');
    writeFileSync(p, npy("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }", Buffer.alloc(16)));
    rejects(() => npyFormat.open(p), p, /structured arrays/);
  });

  it('a header that is not a dictionary', () => {
    assert.throws(() => parseNpyHeader(npy('print(1)', Buffer.alloc(0)), 1000, 'x.npy'), /^FileError: x\.npy: the \.npy header cannot be read/);
  });

  it('a truncated npz, and a zip without arrays', () => {
    const dir = scratch();
    const p = join(dir, 'cut.npz');
    writeFileSync(p, readFileSync(fixture('state.npz')).subarray(0, 700));
    rejects(() => npzFormat.open(p), p, /end-of-central-directory|truncated/);
    const q = join(dir, 'empty.npz');
    const fd = openSync(q, 'w');
    writeZip(fd, [{ name: 'readme.txt', method: 0, data: Buffer.from('hi'), dosTime: 0, dosDate: 33 }]);
    closeSync(fd);
    rejects(() => npzFormat.open(q), q, /no \.npy arrays/);
  });

  it('a damaged deflated entry', () => {
    const dir = scratch('state_compressed.npz');
    const p = join(dir, 'state_compressed.npz');
    const e = readZipFileDirectory(p).entries[0];
    const buf = readFileSync(p);
    buf[e.dataStart + 20] ^= 0xff;
    writeFileSync(p, buf);
    rejects(() => npzFormat.open(p), p, /0\.weight\.npy/);
  });

  it('sniff .npy and .npz by their bytes', () => {
    assert.ok(npyFormat.sniff(readFileSync(fixture('weights.npy')), 'x'));
    assert.ok(npzFormat.sniff(readFileSync(fixture('state.npz')).subarray(0, 4096), 'x.bin'));
    assert.ok(!npzFormat.sniff(readFileSync(fixture('cnn_bn.keras')).subarray(0, 4096), 'x.keras'));
  });
});
