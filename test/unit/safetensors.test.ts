// safetensors: the fixtures (F32, F16, BF16, I64), writing patched copies, and every header
// problem a reader must name (lengths, offsets, overlaps, dtypes, shapes).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ChangedWhileReading, loadTensor, readRange } from '../../server/src/formats/core/checkpoint';
import { pytorchFormat } from '../../server/src/formats/pytorch/index';
import { safetensorsFormat, type SafetensorsStructure } from '../../server/src/formats/safetensors';
import { safetensorsIndexFormat } from '../../server/src/formats/safetensors/sharded';
import { doubled } from '../support/checkpoints';
import { FileError } from '../../server/src/errors/fileError';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const manifest = JSON.parse(readFileSync(join(MODELS, 'MANIFEST.json'), 'utf8')) as { files: { name: string; format: string; keys?: string[]; dtypes?: string[] }[] };
const ST_FILES = manifest.files.filter((f) => f.format === 'safetensors' || f.format === 'safetensors-shard');
const work = scratchDir('synbal-st-');
after(() => rmSync(work, { recursive: true, force: true }));
let serial = 0;
const file = (name: string): string => join(work, `${serial++}-${name}`);

const STORED: Record<string, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64' };


/** A safetensors file from a header object and a data area. */
function st(header: unknown, data: Buffer, opts: { headerText?: string; declared?: bigint } = {}): string {
  const json = Buffer.from(opts.headerText ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.declared ?? BigInt(json.length));
  const path = file('x.safetensors');
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

function assertFileError(path: string, f: () => unknown, re: RegExp): void {
  assert.throws(f, (e: Error) => {
    assert.equal(e.constructor, FileError, `${e.constructor.name}: ${e.message}`);
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    assert.match(e.message, re);
    return true;
  });
}

describe('safetensors fixtures', () => {
  for (const f of ST_FILES) {
    it(`${f.name}: names, dtypes and shapes; the same bytes as the .pt`, () => {
      const path = join(MODELS, f.name);
      const head = readFileSync(path).subarray(0, 4096);
      assert.equal(safetensorsFormat.sniff(head, path), true);
      assert.equal(pytorchFormat.sniff(head, path), false);
      assert.equal(safetensorsIndexFormat.sniff(head, path), false);
      const cp = safetensorsFormat.open(path);
      assert.equal(cp.format, 'safetensors');
      assert.deepEqual(cp.tensors.map((t) => t.name), f.keys);
      assert.deepEqual(cp.warnings, []);
      const s = cp.structure as SafetensorsStructure;
      assert.deepEqual({ ...s.metadata }, { format: 'pt' });
      assert.deepEqual([...new Set(Object.values(s.dtypes))].sort(), [...f.dtypes!].sort());
      for (const t of cp.tensors) assert.equal(t.dtype, STORED[s.dtypes[t.name]]);
      const pt = pytorchFormat.open(join(MODELS, `${f.name.replace(/_sharded-.*$/, '').replace('.safetensors', '')}.pt`));
      for (const t of cp.tensors) {
        const o = pt.tensors.find((x) => x.name === t.name)!;
        assert.deepEqual(t.shape, o.shape, t.name);
        assert.equal(t.dtype, o.dtype, t.name);
        assert.ok(readRange(t.file, t.offset, t.byteLength).equals(readRange(o.file, o.offset, o.byteLength)), t.name);
      }
    });
  }

  for (const name of ['mlp_relu.safetensors', 'mlp_f16.safetensors', 'mlp_bf16.safetensors', 'cnn_bn.safetensors']) {
    it(`${name}: a doubled weight is written; every other byte stays`, () => {
      const path = join(MODELS, name);
      const cp = safetensorsFormat.open(path);
      const w = cp.tensors.filter((t) => t.name.endsWith('weight'));
      const changed = new Map([w[0], w[w.length - 1]].map((t) => [t.name, doubled(cp, t.name)]));
      const target = file(name);
      assert.deepEqual(safetensorsFormat.write(cp, changed, target), [target]);
      const back = safetensorsFormat.open(target);
      for (const t of back.tensors) {
        const want = changed.get(t.name);
        if (want) assert.deepEqual(Array.from(loadTensor(t).data), Array.from(want.data), t.name);
      }
      const a = readFileSync(path);
      const b = readFileSync(target);
      assert.equal(a.length, b.length);
      const ranges = [...changed.keys()].map((n) => cp.tensors.find((t) => t.name === n)!);
      let differing = 0;
      for (let i = 0; i < a.length; i++) {
        if (a[i] === b[i]) continue;
        differing++;
        assert.ok(ranges.some((r) => i >= r.offset && i < r.offset + r.byteLength), `byte ${i} changed outside the patched tensors`);
      }
      assert.ok(differing > 0);
    });
  }

  it('refuses non-float and mismatched writes, and sources changed since opening', () => {
    const src = file('cnn.safetensors');
    writeFileSync(src, readFileSync(join(MODELS, 'cnn_bn.safetensors')));
    const cp = safetensorsFormat.open(src);
    const target = file('cnn.out.safetensors');
    const w = doubled(cp, '0.weight');
    assert.throws(() => safetensorsFormat.write(cp, new Map([['1.num_batches_tracked', w]]), target), /is int64 in the file/);
    assert.throws(() => safetensorsFormat.write(cp, new Map([['0.bias', w]]), target), /shape \[6\] in the file/);
    writeFileSync(src, readFileSync(join(MODELS, 'cnn_bn.safetensors')).subarray(0, 100));
    assert.throws(() => safetensorsFormat.write(cp, new Map([['0.weight', w]]), target), ChangedWhileReading);
    assert.equal(existsSync(target), false);
  });
});

describe('safetensors header checks', () => {
  const f32 = (n: number): Buffer => Buffer.alloc(4 * n);
  const t = (dtype: string, shape: number[], begin: number, end: number): unknown => ({ dtype, shape, data_offsets: [begin, end] });

  it('reads every listed dtype, keeps metadata, orders tensors by data offset', () => {
    const header = {
      b: t('F64', [1], 8, 16), a: t('I8', [2, 2], 0, 4), c: t('BOOL', [4], 4, 8), d: t('U16', [2], 16, 20), e: t('F8_E4M3', [4], 20, 24), f: t('C64', [], 24, 32),
      __metadata__: { format: 'pt', note: 'x' },
    };
    const cp = safetensorsFormat.open(st(header, Buffer.alloc(32)));
    assert.deepEqual(cp.tensors.map((x) => [x.name, x.dtype]), [['a', 'int8'], ['c', 'bool'], ['b', 'float64'], ['d', 'other'], ['e', 'float8'], ['f', 'complex64']]);
    assert.deepEqual({ ...(cp.structure as SafetensorsStructure).metadata }, { format: 'pt', note: 'x' });
  });

  it('a "__proto__" tensor name stays a name', () => {
    const cp = safetensorsFormat.open(st(JSON.parse('{"__proto__": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'), f32(1)));
    assert.deepEqual(cp.tensors.map((x) => x.name), ['__proto__']);
    assert.equal(({} as Record<string, unknown>).dtype, undefined);
  });

  it('bytes that belong to no tensor are a warning', () => {
    const cp = safetensorsFormat.open(st({ a: t('F32', [1], 4, 8) }, f32(3)));
    assert.match(cp.warnings.join('\n'), /8 bytes of the data area belong to no tensor/);
  });

  const bad: [string, () => string, RegExp][] = [
    ['header length beyond the file', () => st({}, Buffer.alloc(0), { declared: 1000n }), /header length 1000 is larger than the file/],
    ['header length 2^64-1', () => st({}, Buffer.alloc(0), { declared: 2n ** 64n - 1n }), /larger than the file/],
    ['too short', () => {
      const p = file('short.safetensors');
      writeFileSync(p, Buffer.from([1, 0, 0]));
      return p;
    }, /too short/],
    ['not JSON', () => st(null, Buffer.alloc(0), { headerText: '{"a": ' }), /not valid JSON/],
    ['not an object', () => st([1, 2], Buffer.alloc(0)), /not a JSON object/],
    ['unknown dtype', () => st({ a: t('F33', [1], 0, 4) }, f32(1)), /unknown dtype "F33"/],
    ['no dtype', () => st({ a: { shape: [1], data_offsets: [0, 4] } }, f32(1)), /no "dtype"/],
    ['offsets outside', () => st({ a: t('F32', [2], 0, 8) }, f32(1)), /data_offsets \[0, 8\] lie outside the data area \(4 bytes\)/],
    ['offsets reversed', () => st({ a: t('F32', [0], 4, 0) }, f32(1)), /lie outside/],
    ['offsets not integers', () => st({ a: { dtype: 'F32', shape: [1], data_offsets: [0.5, 4.5] } }, f32(2)), /two non-negative integers/],
    ['overlap', () => st({ a: t('F32', [2], 0, 8), b: t('F32', [2], 4, 12) }, f32(3)), /tensors a and b overlap/],
    ['size mismatch', () => st({ a: t('F32', [3], 0, 8) }, f32(2)), /needs 12 bytes, but data_offsets \[0, 8\] hold 8/],
    ['negative dim', () => st({ a: t('F32', [-1], 0, 4) }, f32(1)), /impossible shape/],
    ['fractional dim', () => st({ a: t('F32', [1.5], 0, 6) }, f32(2)), /impossible shape/],
    ['absurd shape', () => st({ a: t('F32', [2 ** 40, 2 ** 40, 2 ** 40], 0, 4) }, f32(1)), /impossible shape/],
    ['bad metadata', () => st({ __metadata__: [1] }, Buffer.alloc(0)), /"__metadata__" must be an object/],
    ['entry not an object', () => st({ a: 3 }, Buffer.alloc(0)), /header entry is not an object/],
  ];
  for (const [what, make, re] of bad) {
    it(`refused: ${what}`, () => {
      const path = make();
      assertFileError(path, () => safetensorsFormat.open(path), re);
    });
  }

  it('truncations, flipped bytes and grown header lengths of a real file: opened or one clear Error', () => {
    const original = readFileSync(join(MODELS, 'cnn_bn.safetensors'));
    const path = file('bad.safetensors');
    let refused = 0;
    const probe = (bytes: Buffer): void => {
      writeFileSync(path, bytes);
      try {
        const cp = safetensorsFormat.open(path);
        for (const x of cp.tensors) assert.ok(x.offset + x.byteLength <= bytes.length);
      } catch (e) {
        const err = e as Error;
        assert.equal(err.constructor, FileError, err.message);
        assert.ok(err.message.startsWith(`${path}: `), err.message);
        assert.ok(!(err.cause instanceof TypeError || err.cause instanceof RangeError), String(err.cause));
        refused++;
      }
    };
    for (let n = 0; n < original.length; n += 97) probe(original.subarray(0, n));
    let s = 12345;
    for (let i = 0; i < 300; i++) {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      const b = Buffer.from(original);
      const headerEnd = 8 + Number(original.readBigUInt64LE(0));
      b[s % headerEnd] ^= 1 + (s % 255);
      probe(b);
    }
    for (const delta of [1n, 8n, 1000n, 2n ** 40n]) {
      const b = Buffer.from(original);
      b.writeBigUInt64LE(original.readBigUInt64LE(0) + delta, 0);
      probe(b);
    }
    assert.ok(refused > 200, `refused ${refused}`);
  });
});
