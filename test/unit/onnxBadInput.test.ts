// Broken ONNX files: each gives one Error whose message starts with the file's path and says what
// is wrong; nothing else escapes, nothing hangs, and a failed write leaves no file behind.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { scaledTensors } from '../../server/src/engine/applyScales';
import { balance } from '../../server/src/engine/balance';
import { compile } from '../../server/src/engine/compile';
import { lp } from '../../server/src/engine/regularizer';
import { bytesField, f32, messageField, modelProto, stringField, valueInfo, varintField } from '../../server/src/formats/onnx/encode';
import { onnxFormat } from '../../server/src/formats/onnx/format';
import { onnxStructure, openOnnx } from '../../server/src/formats/onnx/reader';
import { encodeVarint } from '../../server/src/formats/onnx/wire';
import { onnxToNetwork } from '../../server/src/formats/onnx/network';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const dir = scratchDir('synbal-onnx-bad-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** Opens a file that must be refused; returns the message. */
function refusal(path: string, open: (p: string) => unknown = (p) => onnxFormat.open(p)): string {
  let caught: unknown;
  try {
    open(path);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, `${path} was accepted`);
  assert.ok(caught.message.startsWith(`${path}: `), `message starts with the path: ${caught.message}`);
  return caught.message;
}

/** Opens a possibly damaged file: either it works all the way to a compiled network, or one Error names the file. */
function survives(path: string): 'opened' | 'refused' {
  let cp;
  try {
    cp = onnxFormat.open(path);
  } catch (e) {
    assert.ok(e instanceof Error && e.message.startsWith(`${path}: `), String(e));
    return 'refused';
  }
  try {
    compile(onnxToNetwork(cp).network, lp(2));
  } catch (e) {
    assert.ok(e instanceof Error, String(e));
    assert.ok(e.message.startsWith(`${path}: `) || /^(group|tensor|connection|tie|network) /.test(e.message), e.message);
  }
  return 'opened';
}

function file(name: string, bytes: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

describe('damaged real files', () => {
  for (const name of ['mlp_relu.onnx', 'cnn_bn.onnx', 'rnn_relu.onnx']) {
    const original = readFileSync(join(MODELS, name));

    it(`${name} truncated anywhere is refused with the path and a reason`, () => {
      const cuts = [1, 2, 3, 10, 50, 100, 300, Math.floor(original.length / 2), original.length - 100, original.length - 13, original.length - 1];
      for (let i = 0; i < original.length; i += 97) cuts.push(i);
      for (const cut of cuts) {
        const p = file(`cut-${name}`, original.subarray(0, cut));
        const msg = refusal(p);
        assert.match(msg, /truncated|runs past|ends at byte|no graph|no ir_version|past the end|not an ONNX model/, msg);
        refusal(p, (q) => openOnnx(q, { wholeFileLimit: 0, window: 7 }));
      }
    });

    it(`${name} with bytes flipped either opens or is refused cleanly`, () => {
      let s = 5;
      const next = () => (s = (s * 1103515245 + 12345) % 2147483648);
      const seen = { opened: 0, refused: 0 };
      for (let k = 0; k < 250; k++) {
        const b = Buffer.from(original);
        for (let j = 0; j <= k % 3; j++) b[next() % b.length] = next() % 256;
        seen[survives(file(`flip-${name}`, b))]++;
      }
      assert.ok(seen.refused > 0 && seen.opened > 0);
    });
  }

  it('a grown length field runs past its message', () => {
    const p = join(MODELS, 'mlp_relu.onnx');
    const s = onnxStructure(onnxFormat.open(p));
    const original = readFileSync(p);
    // The first tensor's frame: make its length one byte longer than its message holds.
    const fr = s.model.frames[s.model.graph.initializers[0].frame];
    const longer = Buffer.concat([original.subarray(0, fr.lenPos), encodeVarint(fr.end - fr.start + 1), original.subarray(fr.lenPos + fr.lenSize)]);
    assert.match(refusal(file('grown.onnx', longer)), /runs? past the end of its message/);
    // The graph's length grown past the end of the file.
    const g = s.model.frames[0];
    const past = Buffer.concat([original.subarray(0, g.lenPos), encodeVarint(g.end - g.start + 1000), original.subarray(g.lenPos + g.lenSize)]);
    assert.match(refusal(file('grown2.onnx', past)), /truncated/);
  });
});

describe('malformed structure', () => {
  const graph = (nodes: Parameters<typeof modelProto>[0]['nodes'], inits: Parameters<typeof modelProto>[0]['initializers'] = []) =>
    modelProto({ nodes, initializers: inits, inputs: [valueInfo('x', 1, ['N', 2])], outputs: [valueInfo('y', 1, ['N', 2])] });

  it('a varint longer than ten bytes', () => {
    const b = Buffer.concat([varintField(1, 7), Buffer.from([0x3a]), Buffer.alloc(11, 0xff), Buffer.from([0x01])]);
    assert.match(refusal(file('varint.onnx', b)), /bad varint at byte 3/);
  });

  it('an unknown data_type', () => {
    const p = file('dtype.onnx', graph([], [{ name: 'w', dataType: 99, dims: [2], raw: f32([1, 2]) }]));
    assert.match(refusal(p), /tensor w \(initializer\) has unknown data_type 99/);
  });

  it('absurd dimensions: more elements than the file can hold', () => {
    const p = file('dims.onnx', graph([], [{ name: 'w', dataType: 1, dims: [1e5, 1e5], raw: f32([1]) }]));
    assert.match(refusal(p), /tensor w .*claims 10000000000 elements.*more than the file can hold/);
    const huge = file('dims1.onnx', graph([], [{ name: 'w', dataType: 1, dims: [1e9, 1e9, 1e9], raw: f32([1]) }]));
    assert.match(refusal(huge), /tensor w \(initializer\) has absurd dimensions/);
    const q = file('dims2.onnx', graph([], [{ name: 'w', dataType: 1, dims: [3, 3], raw: f32([1, 2]) }]));
    assert.match(refusal(q), /shape \[3, 3\] \(36 bytes of FLOAT\) but raw_data holds 8 bytes/);
    const r = file('dims3.onnx', graph([], [{ name: 'w', dataType: 1, dims: [-3], raw: f32([1]) }]));
    assert.match(refusal(r), /invalid dimension -3/);
  });

  it('a graph with a cycle, and a value produced twice', () => {
    const cyc = file('cycle.onnx', graph([
      { op: 'Relu', inputs: ['b'], outputs: ['a'], name: 'first' },
      { op: 'Relu', inputs: ['a'], outputs: ['b'], name: 'second' },
      { op: 'Relu', inputs: ['x'], outputs: ['y'] },
    ]));
    assert.match(refusal(cyc), /the graph has a cycle: 2 nodes wait on each other \(first \(Relu\), second \(Relu\)\)/);
    const twice = file('twice.onnx', graph([
      { op: 'Relu', inputs: ['x'], outputs: ['y'], name: 'one' },
      { op: 'Relu', inputs: ['x'], outputs: ['y'], name: 'two' },
    ]));
    assert.match(refusal(twice), /value "y" is produced by two nodes: one \(Relu\) and two \(Relu\)/);
  });

  it('wrong wire types, group wire types, field number 0', () => {
    assert.match(refusal(file('w1.onnx', Buffer.concat([varintField(1, 7), Buffer.from([0x3b, 0x00])]))), /unsupported wire type 3/);
    assert.match(refusal(file('w2.onnx', Buffer.concat([varintField(1, 7), Buffer.from([0x00, 0x00])]))), /bad field number 0/);
    assert.match(refusal(file('w3.onnx', Buffer.concat([Buffer.from([0x0a, 0x01, 0x00])]))), /ModelProto.ir_version: field 1 at byte 0 has wire type 2/);
  });

  it('not a model: no ir_version, no graph, an empty file', () => {
    assert.match(refusal(file('noir.onnx', bytesField(7, Buffer.alloc(0)))), /no ir_version/);
    assert.match(refusal(file('nograph.onnx', varintField(1, 7))), /no graph/);
    assert.match(refusal(file('empty.onnx', Buffer.alloc(0))), /no ir_version/);
    assert.match(refusal(join(dir, 'missing.onnx')), /cannot read the file \(ENOENT\)/);
  });

  it('external data that is missing, too short, or outside the model folder', () => {
    const ext = (location: string, length?: number) =>
      graph([], [{ name: 'w', dataType: 1, dims: [4], external: { location, offset: 0, length } }]);
    writeFileSync(join(dir, 'short.bin'), Buffer.alloc(8));
    assert.match(refusal(file('e1.onnx', ext('nowhere.bin'))), /external data file .*nowhere\.bin is missing/);
    assert.match(refusal(file('e2.onnx', ext('short.bin'))), /short\.bin has 8 bytes, but the tensor needs bytes 0\.\.16/);
    assert.match(refusal(file('e3.onnx', ext('../../etc/passwd'))), /leaves the model's folder; refused/);
    assert.match(refusal(file('e4.onnx', ext('/etc/passwd'))), /leaves the model's folder; refused/);
    assert.match(refusal(file('e5.onnx', ext('short.bin', 12))), /\(16 bytes\) but its external data is 12 bytes/);
    // Without offset and length: from the start, as long as the tensor needs.
    const defaults = onnxFormat.open(file('e6.onnx', graph([], [{ name: 'w', dataType: 1, dims: [2], external: { location: 'short.bin' } }])));
    assert.deepEqual([defaults.tensors[0].offset, defaults.tensors[0].byteLength], [0, 8]);
  });

  it('a tensor with a shape but no data', () => {
    const p = file('nodata.onnx', graph([], [{ name: 'w', dataType: 1, dims: [2] }]));
    assert.match(refusal(p), /tensor w \(initializer\) has shape \[2\] but no data/);
  });

  it('subgraphs nested too deep are refused, not recursed into', () => {
    let g = Buffer.concat([stringField(2, 'leaf')]);
    for (let i = 0; i < 40; i++) {
      const node = messageField(1, [stringField(2, `o${i}`), stringField(4, 'If'), messageField(5, [stringField(1, 'then_branch'), bytesField(6, g), varintField(20, 5)])]);
      g = Buffer.concat([node, stringField(2, `g${i}`)]);
    }
    const b = Buffer.concat([varintField(1, 7), bytesField(7, g)]);
    assert.match(refusal(file('deep.onnx', b)), /subgraphs nest deeper than 32 levels/);
  });
});

describe('failed writes leave nothing behind', () => {
  it('a tensor of the wrong shape, an unknown name, a missing folder: no output file', () => {
    const work = mkdtempSync(join(dir, 'nowrite-'));
    const src = join(work, 'm.onnx');
    copyFileSync(join(MODELS, 'mlp_relu.onnx'), src);
    const cp = onnxFormat.open(src);
    const out = join(work, 'out.onnx');
    const bad = (name: string, shape: number[]) => new Map([[name, { name, dtype: 'float32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }]]);
    assert.throws(() => onnxFormat.write(cp, bad('0.weight', [3, 3]), out), /m\.onnx: cannot write tensor 0\.weight: shape \[3, 3\] differs from the stored \[12, 8\]/);
    assert.throws(() => onnxFormat.write(cp, bad('nope', [1]), out), /no tensor of that name/);
    const problem = compile(onnxToNetwork(cp).network, lp(2));
    const changed = scaledTensors(problem, balance(problem).x);
    assert.throws(() => onnxFormat.write(cp, changed, join(work, 'no', 'such', 'dir.onnx')), /ENOENT/);
    assert.deepEqual(readdirSync(work), ['m.onnx']);
    assert.ok(!existsSync(out));
  });

  it('refuses to write when the source changed since it was opened', () => {
    const work = mkdtempSync(join(dir, 'changed-'));
    const src = join(work, 'm.onnx');
    copyFileSync(join(MODELS, 'mlp_relu.onnx'), src);
    const cp = onnxFormat.open(src);
    writeFileSync(src, Buffer.concat([readFileSync(src), Buffer.from([0])]));
    const problem = compile(onnxToNetwork(cp).network, lp(2));
    assert.throws(() => onnxFormat.write(cp, scaledTensors(problem, balance(problem).x), join(work, 'o.onnx')), /changed while it was being read/);
    assert.deepEqual(readdirSync(work), ['m.onnx']);
  });
});
