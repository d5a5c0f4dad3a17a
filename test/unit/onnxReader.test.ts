// Reading ONNX files: every fixture's tensors as the file has them (cross-checked against the same
// network's safetensors file), every storage encoding, subgraphs, external data, laziness.
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadTensor, readRange } from '../../server/src/formats/core/checkpoint';
import { bytesField, f32, messageField, modelProto, stringField, tensorProto, valueInfo, varintField, type TensorSpec } from '../../server/src/formats/onnx/encode';
import { looksLikeOnnx, onnxFormat } from '../../server/src/formats/onnx/format';
import { onnxStructure, openOnnx } from '../../server/src/formats/onnx/reader';
import type { TensorEntry } from '../../server/src/formats/core/checkpoint';
import { readNumbers } from '../../server/src/formats/onnx/tensors';
import { encodeVarint } from '../../server/src/formats/onnx/wire';
import { tensorValues } from '../../server/src/tensor/tensor';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const manifest = JSON.parse(readFileSync(join(MODELS, 'MANIFEST.json'), 'utf8')) as { files: { name: string; network?: string; initializers?: string[] }[] };
const onnxFiles = manifest.files.filter((f) => f.name.endsWith('.onnx'));

const root = scratchDir('synbal-onnx-read-');
after(() => rmSync(root, { recursive: true, force: true }));
function scratch(): string {
  return mkdtempSync(join(root, 'case-'));
}

/** The tensors of a safetensors file: name → dtype, shape and bytes. */
function safetensors(path: string): Map<string, { dtype: string; shape: number[]; bytes: Buffer }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.toString('utf8', 8, 8 + n)) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    out.set(k, { dtype: v.dtype, shape: v.shape, bytes: buf.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]) });
  }
  return out;
}

/** An entry without its decoded values (typed arrays compare by content anyway, but keep it plain). */
const strip = (e: TensorEntry) => ({ ...e, decoded: e.decoded ? Array.from(e.decoded.data) : undefined });

const SAFETENSORS_DTYPE: Record<string, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' };

describe('ONNX fixtures', () => {
  for (const f of onnxFiles) {
    it(`${f.name}: lists the tensors the file holds, with the bytes of the same network's safetensors`, () => {
      const path = join(MODELS, f.name);
      const cp = onnxFormat.open(path);
      assert.equal(cp.format, 'onnx');
      const names = cp.tensors.map((t) => t.name);
      for (const init of f.initializers ?? []) assert.ok(names.includes(init), `initializer ${init} is listed`);
      const st = safetensors(join(MODELS, `${f.network}.safetensors`));
      let compared = 0;
      for (const e of cp.tensors) {
        const ref = st.get(e.name);
        if (!ref) continue;
        assert.equal(e.dtype, SAFETENSORS_DTYPE[ref.dtype], `${e.name} dtype`);
        assert.deepEqual(e.shape, ref.shape, `${e.name} shape`);
        const t = loadTensor(e);
        assert.ok(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(ref.bytes), `${e.name} bytes`);
        compared++;
      }
      if (!f.name.includes('folded')) assert.ok(compared >= 3, `compared ${compared} tensors with the safetensors file`);
      assert.ok(cp.files.length >= 1 && cp.files[0].path === path);
    });
  }

  it('reading through a small window (as for files too big to load) gives the same entries', () => {
    for (const f of onnxFiles) {
      const path = join(MODELS, f.name);
      const whole = onnxFormat.open(path);
      for (const window of [7, 64, 1000]) {
        const windowed = openOnnx(path, { wholeFileLimit: 0, window });
        assert.deepEqual(windowed.tensors.map(strip), whole.tensors.map(strip), `${f.name} with a ${window}-byte window`);
      }
    }
  });

  it('Constant nodes are tensors named after their outputs, equal to the initializers they replaced', () => {
    const a = onnxFormat.open(join(MODELS, 'mlp_relu.onnx'));
    const b = onnxFormat.open(join(MODELS, 'mlp_relu_constants.onnx'));
    assert.deepEqual(b.tensors.map((t) => t.name), a.tensors.map((t) => t.name));
    for (const t of b.tensors) {
      assert.match(onnxStructure(b).records.get(t.name)!.origin, /^Constant node/);
      assert.deepEqual(tensorValues(loadTensor(t)), tensorValues(loadTensor(a.tensors.find((x) => x.name === t.name)!)));
    }
  });

  it('external data: entries point into the data file at their offsets', () => {
    const cp = onnxFormat.open(join(MODELS, 'mlp_relu_external.onnx'));
    const data = join(MODELS, 'mlp_relu_external.onnx.data');
    assert.ok(cp.tensors.every((t) => t.file === data));
    assert.deepEqual(cp.files.map((s) => s.path), [join(MODELS, 'mlp_relu_external.onnx'), data]);
    const plain = onnxFormat.open(join(MODELS, 'mlp_relu.onnx'));
    for (const t of cp.tensors) assert.deepEqual(readRange(t.file, t.offset, t.byteLength), readRange(plain.tensors.find((x) => x.name === t.name)!.file, plain.tensors.find((x) => x.name === t.name)!.offset, t.byteLength));
  });

  it('int64 constants (shapes, axes) are listed as non-float, read-only, and readable as numbers', () => {
    const cp = onnxFormat.open(join(MODELS, 'rnn_relu.onnx'));
    const s = onnxStructure(cp);
    const c = cp.tensors.find((t) => t.dtype === 'int64')!;
    assert.ok(c.readOnlyReason);
    assert.equal(readNumbers(s.model, s.records.get(c.name)!, c).length, Math.max(1, c.shape.reduce((a, b) => a * b, 1)));
  });
});

describe('sniffing', () => {
  it('recognises ONNX files by their first fields, whatever their name', () => {
    for (const f of readdirSync(MODELS)) {
      const head = readFileSync(join(MODELS, f)).subarray(0, 4096);
      assert.equal(looksLikeOnnx(head), f.endsWith('.onnx'), f);
    }
  });

  it('accepts a head cut inside a long doc_string or the graph, refuses other protobufs', () => {
    const doc = Buffer.concat([varintField(1, 7), bytesField(6, Buffer.alloc(10000, 0x61)), bytesField(7, Buffer.alloc(10))]);
    assert.ok(looksLikeOnnx(doc.subarray(0, 4096)));
    // A TensorFlow SavedModel starts with 0x08 too, then a large field 2 (not a short producer name).
    const savedModel = Buffer.concat([varintField(1, 1), bytesField(2, Buffer.alloc(9000, 1))]);
    assert.ok(!looksLikeOnnx(savedModel.subarray(0, 4096)));
    assert.ok(!looksLikeOnnx(Buffer.from('{"format": "synbal-network"}')));
    assert.ok(!looksLikeOnnx(Buffer.from([0x08, 0x07])), 'ir_version alone is no model');
  });
});

describe('storage encodings', () => {
  const dir = scratch();
  const write = (name: string, inits: TensorSpec[], nodes: Parameters<typeof modelProto>[0]['nodes'] = []) => {
    const path = join(dir, name);
    writeFileSync(path, modelProto({ nodes, initializers: inits, inputs: [valueInfo('x', 1, ['N', 2])], outputs: [valueInfo('y', 1, ['N', 2])] }));
    return onnxFormat.open(path);
  };

  it('float_data packed is read in place (raw layout); unpacked and split runs are decoded', () => {
    const cp = write('floats.onnx', [
      { name: 'packed', dataType: 1, dims: [2, 2], floats: [1, 2, 3, 4] },
      { name: 'unpacked', dataType: 1, dims: [3], floats: [0.5, -1, 2], unpacked: true },
      { name: 'double', dataType: 11, dims: [2], doubles: [0.25, -8] },
    ]);
    const [p, u, d] = cp.tensors;
    assert.equal(p.encoding, undefined);
    assert.deepEqual(Array.from(tensorValues(loadTensor(p))), [1, 2, 3, 4]);
    assert.equal(u.encoding, 'onnx-typed-floats');
    assert.deepEqual(Array.from(tensorValues(loadTensor(u))), [0.5, -1, 2]);
    assert.equal(d.dtype, 'float64');
    assert.deepEqual(Array.from(tensorValues(loadTensor(d))), [0.25, -8]);
  });

  it('float16 and bfloat16 in int32_data are decoded to their bit patterns', () => {
    const cp = write('halves.onnx', [
      { name: 'h', dataType: 10, dims: [3], int32s: [0x3c00, 0xc000, 0x3800] },
      { name: 'bf', dataType: 16, dims: [2], int32s: [0x3f80, 0xbf00], unpacked: true },
      { name: 'hraw', dataType: 10, dims: [1], raw: Buffer.from([0x00, 0x3c]) },
    ]);
    assert.deepEqual(Array.from(tensorValues(loadTensor(cp.tensors[0]))), [1, -2, 0.5]);
    assert.deepEqual(Array.from(tensorValues(loadTensor(cp.tensors[1]))), [1, -0.5]);
    assert.equal(cp.tensors[1].dtype, 'bfloat16');
    assert.deepEqual(Array.from(tensorValues(loadTensor(cp.tensors[2]))), [1]);
  });

  it('quantized int8/uint8 tensors are listed read-only, with the reason', () => {
    const cp = write('q.onnx', [
      { name: 'q8', dataType: 3, dims: [2, 2], raw: Buffer.from([1, 255, 3, 4]) },
      { name: 'u8', dataType: 2, dims: [2], int32s: [7, 200] },
    ]);
    for (const t of cp.tensors) assert.match(t.readOnlyReason!, /quantized.*never written back/);
    assert.deepEqual(Array.from(readNumbers(onnxStructure(cp).model, onnxStructure(cp).records.get('q8')!, cp.tensors[0])), [1, -1, 3, 4]);
    const cannot = () => onnxFormat.write(cp, new Map([['q8', { name: 'q8', dtype: 'float32' as const, shape: [2, 2], data: new Float32Array(4) }]]), join(dir, 'never.onnx'));
    assert.throws(cannot, /quantized/);
  });

  it('walks If subgraphs: their initializers and Constant nodes are listed with where they are', () => {
    const branch = (tag: string) =>
      Buffer.concat([
        messageField(1, [stringField(2, `k_${tag}`), stringField(3, `const_${tag}`), stringField(4, 'Constant'), messageField(5, [stringField(1, 'value'), messageField(5, [tensorProto({ name: '', dataType: 1, dims: [2], raw: f32([1, 2]) })]), varintField(20, 4)])]),
        messageField(1, [stringField(1, 'x'), stringField(1, `w_${tag}`), stringField(2, `o_${tag}`), stringField(4, 'Add')]),
        stringField(2, tag),
        messageField(5, [tensorProto({ name: `w_${tag}`, dataType: 1, dims: [2], raw: f32([3, 4]) })]),
        bytesField(12, valueInfo(`o_${tag}`, 1, [2])),
      ]);
    const ifNode = {
      op: 'If',
      inputs: ['cond'],
      outputs: ['y'],
      name: 'branch',
      attrs: { then_branch: { g: branch('then') }, else_branch: { g: branch('else') } },
    };
    const cp = write('if.onnx', [{ name: 'cond', dataType: 9, dims: [], raw: Buffer.from([1]) }], [ifNode]);
    const names = cp.tensors.map((t) => t.name);
    for (const n of ['k_then', 'w_then', 'k_else', 'w_else']) assert.ok(names.includes(n), n);
    assert.match(onnxStructure(cp).records.get('w_then')!.origin, /then_branch of node branch/);
    assert.deepEqual(Array.from(tensorValues(loadTensor(cp.tensors.find((t) => t.name === 'k_else')!))), [1, 2]);
  });

  it('names colliding across subgraphs are made unique, with a warning', () => {
    const sub = Buffer.concat([stringField(2, 'body'), messageField(5, [tensorProto({ name: 'w', dataType: 1, dims: [1], raw: f32([5]) })])]);
    const cp = write('dup.onnx', [{ name: 'w', dataType: 1, dims: [1], raw: f32([1]) }], [{ op: 'If', inputs: ['c'], outputs: ['y'], attrs: { then_branch: { g: sub }, else_branch: { g: sub } } }]);
    assert.equal(new Set(cp.tensors.map((t) => t.name)).size, 3);
    assert.ok(cp.warnings.some((w) => /more than once/.test(w)));
  });
});

describe('large models', () => {
  it('opens a 1 GiB model by reading its structure only (sparse file, lazy tensors)', () => {
    const dir = scratch();
    const path = join(dir, 'big.onnx');
    const rows = 262144;
    const bytes = rows * 1024 * 4;
    // ModelProto { ir_version, graph { initializer { dims, data_type, name, raw_data: <1 GiB> }, input, output } }
    const tensorHead = Buffer.concat([varintField(1, rows), varintField(1, 1024), varintField(2, 1), stringField(8, 'big.weight'), encodeVarint(9 * 8 + 2), encodeVarint(bytes)]);
    const tensorLen = tensorHead.length + bytes;
    const graphTail = Buffer.concat([stringField(2, 'g'), bytesField(11, valueInfo('x', 1, [1])), bytesField(12, valueInfo('x', 1, [1]))]);
    const initField = Buffer.concat([encodeVarint(5 * 8 + 2), encodeVarint(tensorLen)]);
    const graphLen = initField.length + tensorLen + graphTail.length;
    const head = Buffer.concat([varintField(1, 7), encodeVarint(7 * 8 + 2), encodeVarint(graphLen), initField, tensorHead]);
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, head, 0, head.length, 0);
      ftruncateSync(fd, head.length + bytes);
      writeSync(fd, graphTail, 0, graphTail.length, head.length + bytes);
    } finally {
      closeSync(fd);
    }
    const rss = process.memoryUsage().rss;
    const started = performance.now();
    const cp = onnxFormat.open(path);
    const ms = performance.now() - started;
    assert.equal(cp.tensors[0].byteLength, bytes);
    assert.equal(cp.tensors[0].offset, head.length);
    assert.ok(ms < 500, `opened in ${ms.toFixed(0)} ms`);
    assert.ok(process.memoryUsage().rss - rss < 64 << 20, 'memory stays far below the file size');
  });
});
