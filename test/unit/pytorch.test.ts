// PyTorch checkpoints written by real PyTorch 1.13 (test/fixtures/models): zip state dicts,
// legacy files, a whole pickled module of an unknown class, TorchScript. Reading, and
// writing balanced copies that change only the changed tensors' bytes and the CRC fields.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, utimesSync, appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crc32, inflateRawSync } from 'node:zlib';
import { ChangedWhileReading, loadTensor, readRange, type Checkpoint, type TensorEntry } from '../../server/src/formats/core/checkpoint';
import { openPytorch, pytorchFormat, type ModuleNode, type PickleStructure } from '../../server/src/formats/pytorch/index';
import { safetensorsFormat } from '../../server/src/formats/safetensors';
import type { Tensor } from '../../server/src/tensor/tensor';
import { doubled, hasUnzip } from '../support/checkpoints';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const manifest = JSON.parse(readFileSync(join(MODELS, 'MANIFEST.json'), 'utf8')) as { files: { name: string; format: string; keys?: string[]; dtype?: string }[] };
const PT_FILES = manifest.files.filter((f) => f.format.startsWith('pytorch') || f.format === 'torchscript');
const work = scratchDir('synbal-pt-');
after(() => rmSync(work, { recursive: true, force: true }));

const fixture = (name: string): string => join(MODELS, name);
const DTYPE_OF: Record<string, string> = { float32: 'float32', float16: 'float16', bfloat16: 'bfloat16' };

/** Module paths of the pickled TinyNet and TorchScript Sequential map onto mlp_relu's state dict keys. */
const MODULE_TO_STATE: Record<string, string> = { fc1: '0', fc2: '2', fc3: '4' };


// An independent zip walk (not the product's reader): every entry's CRC-32 against its
// data, in the central directory and in the data descriptor that follows the data.
interface CrcSite {
  name: string;
  at: number;
}
function zipCrcSites(buf: Buffer): { sites: CrcSite[]; entries: number } {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  assert.ok(eocd >= 0, 'end of central directory record');
  let count = buf.readUInt16LE(eocd + 10);
  let cd = buf.readUInt32LE(eocd + 16);
  if (buf.readUInt32LE(eocd - 20) === 0x07064b50) {
    const rec = Number(buf.readBigUInt64LE(eocd - 20 + 8));
    count = Number(buf.readBigUInt64LE(rec + 32));
    cd = Number(buf.readBigUInt64LE(rec + 48));
  }
  const sites: CrcSite[] = [];
  for (let i = 0, p = cd; i < count; i++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50);
    const crc = buf.readUInt32LE(p + 16);
    let csize = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    if (csize === 0xffffffff || local === 0xffffffff) {
      const extra = buf.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
      let q = 4;
      if (buf.readUInt32LE(p + 24) === 0xffffffff) q += 8;
      if (csize === 0xffffffff) (csize = Number(extra.readBigUInt64LE(q))), (q += 8);
      if (local === 0xffffffff) local = Number(extra.readBigUInt64LE(q));
    }
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(dataStart, dataStart + csize);
    const actual = crc32(buf.readUInt16LE(p + 10) === 8 ? inflateRawSync(raw) : raw) >>> 0;
    assert.equal(crc, actual, `central directory CRC of ${name}`);
    sites.push({ name, at: p + 16 });
    if (buf.readUInt16LE(local + 6) & 8) {
      const d = dataStart + csize;
      const at = buf.readUInt32LE(d) === 0x08074b50 ? d + 4 : d;
      assert.equal(buf.readUInt32LE(at), actual, `data descriptor CRC of ${name}`);
      sites.push({ name, at });
    }
    if (buf.readUInt32LE(local + 14) !== 0) {
      assert.equal(buf.readUInt32LE(local + 14), actual, `local header CRC of ${name}`);
      sites.push({ name, at: local + 14 });
    }
    p += 46 + nameLen + extraLen + buf.readUInt16LE(p + 32);
  }
  return { sites, entries: count };
}


/** Every byte that differs between the files lies in an allowed range. */
function assertOnlyChanged(a: Buffer, b: Buffer, allowed: { offset: number; length: number }[]): number {
  assert.equal(a.length, b.length, 'same size');
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    differing++;
    assert.ok(allowed.some((r) => i >= r.offset && i < r.offset + r.length), `byte ${i} changed outside the patched tensors and CRC fields`);
  }
  return differing;
}

function entry(cp: Checkpoint, name: string): TensorEntry {
  const e = cp.tensors.find((t) => t.name === name);
  assert.ok(e, `tensor ${name} in ${cp.path}`);
  return e;
}

describe('PyTorch fixtures: reading', () => {
  it('the manifest lists the PyTorch files this suite expects', () => {
    const names = PT_FILES.map((f) => f.name);
    for (const n of ['mlp_relu.pt', 'mlp_relu_legacy.pt', 'cnn_bn_legacy.pt', 'mlp_relu_module.pt', 'mlp_relu_script.pt', 'mlp_f16.pt', 'mlp_bf16.pt', 'cnn_bn.pt']) assert.ok(names.includes(n), n);
  });

  for (const f of PT_FILES) {
    it(`${f.name}: sniffed as pytorch, tensors named and typed as the manifest says`, () => {
      const path = fixture(f.name);
      const head = readFileSync(path).subarray(0, 4096);
      assert.equal(pytorchFormat.sniff(head, path), true);
      assert.equal(safetensorsFormat.sniff(head, path), false);
      const cp = pytorchFormat.open(path);
      assert.equal(cp.format, 'pytorch');
      assert.deepEqual(cp.files.map((s) => s.path), [path]);
      const names = cp.tensors.map((t) => t.name);
      assert.deepEqual(names, f.keys);
      for (const t of cp.tensors) {
        if (t.name.endsWith('num_batches_tracked')) {
          assert.equal(t.dtype, 'int64');
          assert.deepEqual(t.shape, []);
          assert.equal(readRange(t.file, t.offset, 8).readBigInt64LE(0), 100n);
        } else assert.equal(t.dtype, DTYPE_OF[f.dtype ?? 'float32'], t.name);
        assert.equal(t.readOnlyReason, undefined);
        assert.equal(t.encoding, undefined);
        if (t.dtype !== 'int64') assert.equal(loadTensor(t).data.length, t.shape.reduce((a, b) => a * b, 1));
      }
      const s = cp.structure as PickleStructure;
      assert.deepEqual(s.keys, names);
      assert.equal(s.container, f.name.includes('legacy') ? 'legacy' : f.format === 'torchscript' ? 'torchscript' : 'zip');
      assert.equal(s.kind, f.format === 'pytorch-zip-pickled-module' || f.format === 'torchscript' ? 'module' : 'state-dict');
      assert.doesNotThrow(() => JSON.stringify(s));
    });
  }

  it('tensor bytes equal the safetensors file of the same network', () => {
    let compared = 0;
    for (const f of PT_FILES) {
      const network = f.name.replace(/(_legacy|_module|_script)?\.pt$/, '');
      const st = fixture(`${network}.safetensors`);
      if (!existsSync(st)) continue;
      const pt = pytorchFormat.open(fixture(f.name));
      const sf = safetensorsFormat.open(st);
      for (const t of pt.tensors) {
        const key = t.name.replace(/^(fc\d)\./, (_, m: string) => `${MODULE_TO_STATE[m]}.`);
        const other = entry(sf, key);
        assert.deepEqual(t.shape, other.shape, `${f.name} ${t.name} shape`);
        assert.ok(readRange(t.file, t.offset, t.byteLength).equals(readRange(other.file, other.offset, other.byteLength)), `${f.name} ${t.name} bytes`);
        compared++;
      }
    }
    assert.ok(compared >= 60, `compared ${compared} tensors`);
  });

  it('a plain state dict records its module prefixes, activations included', () => {
    const s = pytorchFormat.open(fixture('mlp_relu.pt')).structure as PickleStructure;
    assert.deepEqual(s.modulePaths, ['', '0', '1', '2', '3', '4']);
    assert.equal(s.module, undefined);
    assert.deepEqual(s.globals, []);
    const legacy = pytorchFormat.open(fixture('cnn_bn_legacy.pt')).structure as PickleStructure;
    assert.deepEqual(legacy.modulePaths, ['', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
  });

  it('the pickled TinyNet module: an inert placeholder with its module tree', () => {
    const cp = pytorchFormat.open(fixture('mlp_relu_module.pt'));
    assert.ok(cp.warnings.some((w) => w.includes('__main__.TinyNet') && w.includes('placeholder')), cp.warnings.join('\n'));
    const s = cp.structure as PickleStructure;
    assert.ok(s.globals.includes('__main__.TinyNet'));
    const root = s.module!;
    assert.equal(root.className, '__main__.TinyNet');
    assert.equal(root.path, '');
    assert.deepEqual(root.children.map((c) => [c.name, c.typeName]), [
      ['fc1', 'torch.nn.modules.linear.Linear'],
      ['act', 'torch.nn.modules.activation.ReLU'],
      ['fc2', 'torch.nn.modules.linear.Linear'],
      ['act2', 'torch.nn.modules.activation.ReLU'],
      ['fc3', 'torch.nn.modules.linear.Linear'],
    ]);
    const fc1 = root.children[0];
    assert.deepEqual(fc1.parameters, [{ name: 'weight', tensor: 'fc1.weight' }, { name: 'bias', tensor: 'fc1.bias' }]);
    assert.equal(fc1.attributes.in_features, 8);
    assert.equal(fc1.attributes.out_features, 12);
  });

  it('TorchScript: module tree from data.pkl, parameters and constants from code/', () => {
    const cp = pytorchFormat.open(fixture('mlp_relu_script.pt'));
    const s = cp.structure as PickleStructure;
    assert.equal(s.container, 'torchscript');
    const root = s.module!;
    assert.match(root.className, /^__torch__\./);
    const linears = root.children.filter((c) => c.typeName === 'torch.nn.modules.linear.Linear');
    assert.deepEqual(linears.map((c) => c.path), ['0', '2', '4']);
    assert.deepEqual(root.children.filter((c) => c.typeName === 'torch.nn.modules.activation.ReLU').map((c) => c.path), ['1', '3']);
    const first: ModuleNode = linears[0];
    assert.deepEqual(first.parameters.map((p) => p.tensor), ['0.weight', '0.bias']);
    assert.equal(first.attributes.in_features, 8);
    assert.ok(s.scriptClasses!.some((c) => c.source.includes('def forward')));
  });
});

describe('PyTorch fixtures: writing balanced copies', () => {
  for (const f of PT_FILES) {
    it(`${f.name}: one tensor doubled, every other byte the same, CRCs valid`, () => {
      const path = fixture(f.name);
      const cp = pytorchFormat.open(path);
      const weights = cp.tensors.filter((t) => t.name.endsWith('weight') && t.shape.length >= 2);
      const changed = new Map([weights[0], weights[weights.length - 1]].map((t) => [t.name, doubled(cp, t.name)]));
      const target = join(work, `out-${f.name}`);
      const written = pytorchFormat.write(cp, changed, target);
      assert.deepEqual(written, [target]);

      const back = pytorchFormat.open(target);
      assert.deepEqual(back.tensors.map((t) => [t.name, t.offset, t.byteLength]), cp.tensors.map((t) => [t.name, t.offset, t.byteLength]));
      for (const t of back.tensors) {
        if (t.dtype === 'int64') continue;
        const now = loadTensor(t).data;
        const want = changed.get(t.name)?.data ?? loadTensor(entry(cp, t.name)).data;
        assert.deepEqual(Array.from(now), Array.from(want), t.name);
      }
      const before = readFileSync(path);
      const afterBytes = readFileSync(target);
      const allowed = [...changed.keys()].map((n) => ({ offset: entry(cp, n).offset, length: entry(cp, n).byteLength }));
      if (before.subarray(0, 4).toString('latin1') === 'PK\x03\x04') {
        const { sites } = zipCrcSites(afterBytes);
        allowed.push(...sites.map((s) => ({ offset: s.at, length: 4 })));
        if (hasUnzip) assert.match(execFileSync('unzip', ['-t', target]).toString(), /No errors detected/);
      }
      assert.ok(assertOnlyChanged(before, afterBytes, allowed) > 0);
      assert.deepEqual(readdirSync(work).filter((n) => n.endsWith('.tmp')), [], 'no temporary files left');
    });
  }

  it('writing over the input keeps a .bak copy of the original', () => {
    const target = join(work, 'inplace.pt');
    copyFileSync(fixture('mlp_relu.pt'), target);
    const cp = pytorchFormat.open(target);
    const twice = doubled(cp, '0.weight');
    pytorchFormat.write(cp, new Map([['0.weight', twice]]), target, { backup: true });
    assert.ok(readFileSync(`${target}.bak`).equals(readFileSync(fixture('mlp_relu.pt'))));
    assert.deepEqual(Array.from(loadTensor(entry(pytorchFormat.open(target), '0.weight')).data), Array.from(twice.data));
  });

  it('refuses wrong names, dtypes and shapes with the file named, writing nothing', () => {
    const cp = pytorchFormat.open(fixture('mlp_relu.pt'));
    const w = doubled(cp, '0.weight');
    const target = join(work, 'refused.pt');
    const cases: [string, Tensor, RegExp][] = [
      ['nope', w, /no tensor named nope/],
      ['0.weight', { ...w, shape: [8, 12] }, /shape \[12, 8\]/],
      ['0.weight', { ...w, dtype: 'float64', data: Float64Array.from(w.data) }, /is float32 in the file/],
    ];
    for (const [name, t, re] of cases) {
      assert.throws(() => pytorchFormat.write(cp, new Map([[name, t]]), target), (e: Error) => e.message.startsWith(fixture('mlp_relu.pt')) && re.test(e.message));
      assert.equal(existsSync(target), false);
    }
  });

  it('a source that changes after opening is not copied (ChangedWhileReading), nothing is written', () => {
    const src = join(work, 'moving.pt');
    copyFileSync(fixture('mlp_relu.pt'), src);
    const cp = pytorchFormat.open(src);
    utimesSync(src, new Date(), new Date(Date.now() + 5000));
    const target = join(work, 'moving.out.pt');
    assert.throws(() => pytorchFormat.write(cp, new Map([['0.weight', doubled(cp, '0.weight')]]), target), ChangedWhileReading);
    assert.equal(existsSync(target), false);
  });

  it('a file that changes while it is being opened is reported as ChangedWhileReading', () => {
    const src = join(work, 'growing.pt');
    copyFileSync(fixture('mlp_relu_legacy.pt'), src);
    assert.throws(() => openPytorch(src, { afterParse: () => appendFileSync(src, Buffer.alloc(16)) }), ChangedWhileReading);
    writeFileSync(src, readFileSync(fixture('mlp_relu.pt')));
    assert.equal(openPytorch(src).tensors.length, 6);
  });
});
