// PyTorch checkpoints built byte by byte inside the test: hostile pickles (os.system,
// builtins.eval, posix.system, subprocess.Popen), checkpoint dicts, tied weights, views
// and quantized tensors, compressed and zip64 archives, a sparse file beyond 4 GiB, and
// structural damage a reader must name instead of crashing on.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crc32, deflateRawSync } from 'node:zlib';
import { loadTensor, readRange, type Checkpoint } from '../../server/src/formats/core/checkpoint';
import { pytorchFormat, type PickleStructure } from '../../server/src/formats/pytorch/index';
import { readZipDirectory } from '../../server/src/formats/zip';
import type { Tensor } from '../../server/src/tensor/tensor';
import { hasUnzip } from '../support/checkpoints';
import { FileError } from '../../server/src/errors/fileError';
import { main } from '../../server/src/cli';
import { Pickle } from '../support/hostileFiles';
import { scratchDir } from '../support/scratch';

const work = scratchDir('synbal-ptsyn-');
after(() => rmSync(work, { recursive: true, force: true }));
let serial = 0;
const file = (name: string): string => join(work, `${serial++}-${name}`);

// The pickle writer (just the opcodes torch.save emits) is shared with the hostile-file builders.

const f32 = (values: number[]): Buffer => Buffer.from(Float32Array.from(values).buffer);

// ---- a zip writer shaped like PyTorch's: STORED, data descriptors, zip64 end records ---------

interface ZipInput {
  name: string;
  data: Buffer;
  deflate?: boolean;
  /** Zero bytes (a sparse hole) before this entry's local header. */
  gapBefore?: number;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** Writes the archive to `path` with positional writes, so gaps stay sparse. Returns its size. */
function writeZip(path: string, inputs: ZipInput[], opts: { zip64?: boolean } = {}): number {
  const fd = openSync(path, 'w');
  let pos = 0;
  const put = (b: Buffer): void => {
    writeSync(fd, b, 0, b.length, pos);
    pos += b.length;
  };
  const central: Buffer[] = [];
  try {
    for (const e of inputs) {
      pos += e.gapBefore ?? 0;
      const local = pos;
      const stored = e.deflate ? deflateRawSync(e.data) : e.data;
      const crc = crc32(e.data) >>> 0;
      const big = opts.zip64 || local >= 0xffffffff || stored.length >= 0xffffffff;
      const name = Buffer.from(e.name);
      const localExtra = big ? Buffer.concat([u16(1), u16(16), u64(0), u64(0)]) : Buffer.alloc(0);
      put(Buffer.concat([u32(0x04034b50), u16(big ? 45 : 20), u16(8), u16(e.deflate ? 8 : 0), u16(0), u16(0), u32(0), u32(0), u32(0), u16(name.length), u16(localExtra.length), name, localExtra]));
      put(stored);
      put(big ? Buffer.concat([u32(0x08074b50), u32(crc), u64(stored.length), u64(e.data.length)]) : Buffer.concat([u32(0x08074b50), u32(crc), u32(stored.length), u32(e.data.length)]));
      const extra = big ? Buffer.concat([u16(1), u16(24), u64(e.data.length), u64(stored.length), u64(local)]) : Buffer.alloc(0);
      central.push(
        Buffer.concat([
          u32(0x02014b50), u16(45), u16(big ? 45 : 20), u16(8), u16(e.deflate ? 8 : 0), u16(0), u16(0), u32(crc),
          u32(big ? 0xffffffff : stored.length), u32(big ? 0xffffffff : e.data.length), u16(name.length), u16(extra.length), u16(0), u16(0), u16(0), u32(0),
          u32(big ? 0xffffffff : local), name, extra,
        ]),
      );
    }
    const cdStart = pos;
    put(Buffer.concat(central));
    const cdSize = pos - cdStart;
    const eocd64 = pos;
    put(Buffer.concat([u32(0x06064b50), u64(44), u16(45), u16(45), u32(0), u32(0), u64(inputs.length), u64(inputs.length), u64(cdSize), u64(cdStart)]));
    put(Buffer.concat([u32(0x07064b50), u32(0), u64(eocd64), u32(1)]));
    const sat = opts.zip64 || cdStart >= 0xffffffff;
    put(Buffer.concat([u32(0x06054b50), u16(0), u16(0), u16(inputs.length), u16(inputs.length), u32(sat ? 0xffffffff : cdSize), u32(sat ? 0xffffffff : cdStart), u16(0)]));
  } finally {
    closeSync(fd);
  }
  return pos;
}

function torchZip(path: string, pickle: Buffer, storages: Record<string, Buffer>, opts: { zip64?: boolean; deflate?: string[] } = {}): string {
  writeZip(path, [{ name: 'archive/data.pkl', data: pickle }, ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data, deflate: opts.deflate?.includes(k) })), { name: 'archive/version', data: Buffer.from('3\n') }], opts);
  return path;
}

/** The legacy format: magic, protocol, sys_info, object, storage keys, then the storages. */
function legacyFile(path: string, object: Buffer, storages: [string, Buffer, number][], sysInfo?: Buffer): string {
  const parts = [
    Buffer.from('80028a0a6cfc9c46f9206aa850192e', 'hex'),
    Buffer.from('8002 4de903 2e'.replace(/ /g, ''), 'hex'),
    sysInfo ?? new Pickle().raw('}').str('little_endian').raw('\x88s').done(),
    object,
  ];
  const keys = new Pickle().raw('(');
  for (const [k] of storages) keys.str(k);
  parts.push(keys.raw('l').done());
  for (const [, bytes, itemsize] of storages) {
    const count = Buffer.alloc(8);
    count.writeBigInt64LE(BigInt(bytes.length / itemsize));
    parts.push(count, bytes);
  }
  writeFileSync(path, Buffer.concat(parts));
  return path;
}

function assertFileError(path: string, f: () => unknown, re: RegExp): void {
  assert.throws(f, (e: Error) => {
    assert.equal(e.constructor, FileError, `plain Error, got ${e.constructor.name}: ${e.message}`);
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    assert.match(e.message, re);
    return true;
  });
}

function checkZipCrcs(path: string): void {
  const fd = openSync(path, 'r');
  try {
    const size = readFileSync(path).length;
    for (const e of readZipDirectory(fd, size).entries) {
      const data = readRange(path, e.dataStart, e.compressedSize);
      if (e.method === 0) assert.equal(crc32(data) >>> 0, e.crc >>> 0, e.name);
    }
  } finally {
    closeSync(fd);
  }
  if (hasUnzip) assert.match(execFileSync('unzip', ['-t', path]).toString(), /No errors detected/);
}


const scaled = (cp: Checkpoint, name: string, k: number): Tensor => {
  const t = loadTensor(cp.tensors.find((e) => e.name === name)!);
  return { ...t, data: (t.data as Float32Array).map((x) => x * k) };
};

// ---- hostile pickles ------------------------------------------------------------------------

const OS_SYSTEM_LS = Buffer.from('\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.', 'latin1');

function payloads(canary: string): [string, Buffer][] {
  const cmd = `touch ${canary}`;
  const call = (mod: string, name: string, arg: (p: Pickle) => void): Buffer => {
    const p = new Pickle().global(mod, name).raw('(');
    arg(p);
    return p.raw('tR').done();
  };
  return [
    ['os.system', call('os', 'system', (p) => p.str(cmd))],
    ['posix.system', call('posix', 'system', (p) => p.str(cmd))],
    ['nt.system', call('nt', 'system', (p) => p.str(cmd))],
    ['builtins.eval', call('builtins', 'eval', (p) => p.str(`__import__('os').system('${cmd}')`))],
    ['__builtin__.eval', call('__builtin__', 'eval', (p) => p.str(`__import__('os').system('${cmd}')`))],
    ['builtins.exec', call('builtins', 'exec', (p) => p.str(`import os; os.system('${cmd}')`))],
    ['subprocess.Popen', call('subprocess', 'Popen', (p) => p.raw('(').str('touch').str(canary).raw('l'))],
    // protocol 4 STACK_GLOBAL, and protocol 0 INST
    ['os.system', Buffer.concat([Buffer.from('\x80\x04', 'latin1'), new Pickle().str('os').str('system').raw('\x93(').str(cmd).raw('tR').done().subarray(2)])],
    ['os.system', Buffer.from(`(S'${cmd}'\nios\nsystem\n.`, 'latin1')],
  ];
}

describe('hostile pickles are read as data: nothing runs, the globals are named', () => {
  it('os.system("ls") in a zip checkpoint: refused with the global named', () => {
    const path = torchZip(file('ls.pt'), OS_SYSTEM_LS, {});
    assertFileError(path, () => pytorchFormat.open(path), /holds no tensors: its result is a call to os\.system\(…\), which was not run.*pickle global os\.system was not run/);
  });

  it('the same payload as a legacy file', () => {
    const path = legacyFile(file('ls_legacy.pt'), OS_SYSTEM_LS, []);
    assertFileError(path, () => pytorchFormat.open(path), /os\.system/);
  });

  it('every payload shape, zip and legacy: refused or opened, never run', () => {
    const canary = join(work, 'pwned');
    for (const [global, payload] of payloads(canary)) {
      for (const path of [torchZip(file('evil.pt'), payload, {}), legacyFile(file('evil_legacy.pt'), payload, [])]) {
        assertFileError(path, () => pytorchFormat.open(path), new RegExp(`pickle global ${global.replace('.', '\\.')} was not run`));
      }
    }
    assert.equal(existsSync(canary), false, 'the payload ran');
  });

  it('a state dict with a payload beside its tensors opens and warns, but no copy is written (it would carry the payload)', () => {
    const canary = join(work, 'pwned2');
    const p = new Pickle().dict([
      ['w', (q) => q.tensor({ key: '0', numel: 4, shape: [2, 2] })],
      ['evil', (q) => q.global('os', 'system').raw('(').str(`touch ${canary}`).raw('tR')],
      ['evil2', (q) => q.global('builtins', 'eval').raw('(').str('1').raw('tR')],
    ]);
    const path = torchZip(file('mixed.pt'), p.done(), { '0': f32([1, 2, 3, 4]) });
    const cp = pytorchFormat.open(path);
    assert.deepEqual(cp.tensors.map((t) => t.name), ['w']);
    assert.ok(cp.warnings.some((w) => /pickle global os\.system was not run: it can execute code/.test(w)), cp.warnings.join('\n'));
    assert.ok(cp.warnings.some((w) => /pickle global builtins\.eval was not run: it can execute code/.test(w)));
    assert.deepEqual((cp.structure as PickleStructure).globals, ['os.system', 'builtins.eval']);
    assert.deepEqual((cp.structure as PickleStructure).executable, ['os.system', 'builtins.eval']);
    const out = file('mixed.out.pt');
    assert.throws(() => pytorchFormat.write(cp, new Map([['w', scaled(cp, 'w', 3)]]), out), (e: Error) => {
      assert.ok(e instanceof FileError && e.kind === 'refused' && e.path === path, e.message);
      assert.match(e.problem, /calls os\.system, builtins\.eval, which can execute code .* nothing is written/);
      return true;
    });
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(canary), false);
  });

  it('synbal balance on such a state dict: exit 2, the calls named, no output', async () => {
    const p = new Pickle().dict([
      ['0.weight', (q) => q.tensor({ key: '0', numel: 6, shape: [3, 2] })],
      ['2.weight', (q) => q.tensor({ key: '1', numel: 3, shape: [1, 3] })],
      ['evil', (q) => q.global('os', 'system').raw('(').str('true').raw('tR')],
    ]);
    const path = torchZip(file('seq.pt'), p.done(), { '0': f32([1, 2, 3, 4, 5, 6]), '1': f32([0.5, 0.25, 2]) });
    let err = '';
    const out = file('seq.balanced.pt');
    const code = await main(['balance', path, '--activation', 'relu', '-o', out], { out: () => {}, err: (t) => (err += t) });
    assert.equal(code, 2, err);
    assert.match(err, new RegExp(`^synbal: ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: the pickle calls os\\.system, which can execute code`));
    assert.equal(existsSync(out), false);
  });

  it('"can execute code" comes from a rule, not a list of bad names: any called global off the allowlist', () => {
    // Both run commands under torch.load, and neither name looks dangerous.
    for (const [module, name] of [['pydoc', 'pipepager'], ['uuid', '_get_command_stdout'], ['some_module', 'innocent_helper']]) {
      const p = new Pickle().dict([
        ['w', (q) => q.tensor({ key: '0', numel: 2, shape: [2] })],
        ['x', (q) => q.global(module, name).raw('(').str('echo hi').raw('tR')],
      ]);
      const cp = pytorchFormat.open(torchZip(file('rule.pt'), p.done(), { '0': f32([1, 2]) }));
      assert.deepEqual((cp.structure as PickleStructure).executable, [`${module}.${name}`]);
      assert.ok(cp.warnings.some((w) => w.includes(`pickle global ${module}.${name} was not run: it can execute code`)), cp.warnings.join('\n'));
    }
  });

  it('value constructors, and classes a pickle only instantiates (NEWOBJ), are not flagged', () => {
    const p = new Pickle().dict([
      ['w', (q) => q.tensor({ key: '0', numel: 2, shape: [2] })],
      // numpy.dtype('f8', False, True): a value constructor a training checkpoint carries.
      ['dtype', (q) => q.global('numpy', 'dtype').raw('(').str('f8').raw('\x89\x88tR')],
      // A model class rebuilt as torch.save does for modules: cls.__new__(cls) then its state.
      ['obj', (q) => q.global('__main__', 'MyNet').raw(')\x81}b')],
    ]);
    const path = torchZip(file('values.pt'), p.done(), { '0': f32([1, 2]) });
    const cp = pytorchFormat.open(path);
    assert.deepEqual((cp.structure as PickleStructure).executable, []);
    assert.ok(!cp.warnings.some((w) => w.includes('can execute code')), cp.warnings.join('\n'));
    const out = file('values.out.pt');
    pytorchFormat.write(cp, new Map([['w', scaled(cp, 'w', 2)]]), out);
    assert.deepEqual(Array.from(loadTensor(pytorchFormat.open(out).tensors[0]).data), [2, 4]);
  });

  it('"__proto__" keys name tensors and extras without touching prototypes', () => {
    const p = new Pickle().dict([
      ['__proto__', (q) => q.tensor({ key: '0', numel: 2, shape: [2] })],
      ['constructor', (q) => q.int(3)],
    ]);
    const cp = pytorchFormat.open(torchZip(file('proto.pt'), p.done(), { '0': f32([5, 6]) }));
    assert.deepEqual(cp.tensors.map((t) => t.name), ['__proto__']);
    const extras = (cp.structure as PickleStructure).extras;
    assert.equal(Object.getPrototypeOf(extras), null);
    assert.equal(extras.constructor, 3);
    assert.equal(({} as Record<string, unknown>).constructor, Object);
  });
});

describe('synthetic checkpoints: structure, views, storages', () => {
  it('a training checkpoint dict: nested state dict and optimizer state, scalar extras', () => {
    const p = new Pickle().dict([
      ['epoch', (q) => q.int(7)],
      ['arch', (q) => q.str('mlp')],
      ['state_dict', (q) => q.dict([['fc.weight', (r) => r.tensor({ key: '0', numel: 6, shape: [2, 3] })]])],
      ['optimizer', (q) => q.dict([['state', (r) => r.raw('}').int(0).dict([['exp_avg', (s) => s.tensor({ key: '1', numel: 6, shape: [2, 3] })]]).raw('s')]])],
    ]);
    const cp = pytorchFormat.open(torchZip(file('ckpt.pt'), p.done(), { '0': f32([1, 2, 3, 4, 5, 6]), '1': f32([0, 0, 0, 0, 0, 0]) }));
    const s = cp.structure as PickleStructure;
    assert.equal(s.kind, 'checkpoint');
    assert.deepEqual(s.keys, ['state_dict.fc.weight', 'optimizer.state.0.exp_avg']);
    assert.deepEqual({ ...s.extras }, { epoch: 7, arch: 'mlp' });
  });

  it('tied weights: one storage under two names, written consistently or refused', () => {
    const p = new Pickle().raw('}(').str('a').tensor({ key: '0', numel: 4, shape: [4] }).raw('q\x07').str('b').raw('h\x07u');
    const cp = pytorchFormat.open(torchZip(file('tied.pt'), p.done(), { '0': f32([1, 2, 3, 4]) }));
    assert.deepEqual(cp.tensors.map((t) => [t.name, t.offset]), [['a', cp.tensors[0].offset], ['b', cp.tensors[0].offset]]);
    assert.ok(cp.warnings.some((w) => /tensors a and b are the same bytes/.test(w)), cp.warnings.join('\n'));
    const out = file('tied.out.pt');
    assert.throws(() => pytorchFormat.write(cp, new Map([['a', scaled(cp, 'a', 2)], ['b', scaled(cp, 'b', 3)]]), out), /share bytes.*different values/);
    assert.equal(existsSync(out), false);
    pytorchFormat.write(cp, new Map([['a', scaled(cp, 'a', 2)], ['b', scaled(cp, 'b', 2)]]), out);
    assert.deepEqual(Array.from(loadTensor(pytorchFormat.open(out).tensors[1]).data), [2, 4, 6, 8]);
  });

  it('views: a transposed weight is read (gathered) but read-only; a slice is a byte range', () => {
    const storage = f32([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const p = new Pickle().dict([
      ['t', (q) => q.tensor({ key: '0', numel: 12, shape: [4, 3], stride: [1, 4] })],
      ['s', (q) => q.tensor({ key: '0', numel: 12, offset: 4, shape: [2, 4] })],
    ]);
    for (const path of [torchZip(file('views.pt'), p.done(), { '0': storage }), legacyFile(file('views_legacy.pt'), p.done(), [['0', storage, 4]])]) {
      const cp = pytorchFormat.open(path);
      const [t, s] = cp.tensors;
      assert.match(t.readOnlyReason ?? '', /non-contiguous view \(stride \[1, 4\]\)/);
      assert.deepEqual(Array.from(loadTensor(t).data), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
      assert.equal(s.readOnlyReason, undefined);
      assert.deepEqual(Array.from(loadTensor(s).data), [4, 5, 6, 7, 8, 9, 10, 11]);
      assert.throws(() => pytorchFormat.write(cp, new Map([['t', loadTensor(t)]]), file('x.pt')), /cannot be written: it is a non-contiguous view/);
      const out = file('views.out.pt');
      pytorchFormat.write(cp, new Map([['s', scaled(cp, 's', -1)]]), out);
      assert.deepEqual(Array.from(loadTensor(pytorchFormat.open(out).tensors[0]).data), [0, -4, -8, 1, -5, -9, 2, -6, -10, 3, -7, -11]);
    }
  });

  it('quantized tensors are listed read-only with their quantizer', () => {
    const p = new Pickle().raw('}(').str('q').global('torch._utils', '_rebuild_qtensor').raw('((').str('storage').global('torch', 'QInt8Storage').str('0').str('cpu').int(3).raw('tQ');
    p.int(0).ints([3]).ints([1]).raw('(').global('torch', 'per_tensor_affine').raw(Buffer.from('473fb999999999999a', 'hex')).int(0).raw('t\x89').global('collections', 'OrderedDict').raw(')RtRu');
    const cp = pytorchFormat.open(torchZip(file('q.pt'), p.done(), { '0': Buffer.from([1, 2, 3]) }));
    assert.equal(cp.tensors[0].dtype, 'int8');
    assert.match(cp.tensors[0].readOnlyReason ?? '', /quantized \(qint8, per-tensor affine, scale 0\.1, zero point 0\)/);
  });

  it('float16 / bfloat16 / int64 storages map to the checkpoint dtypes', () => {
    const p = new Pickle().dict([
      ['h', (q) => q.tensor({ type: 'HalfStorage', key: '0', numel: 2, shape: [2] })],
      ['b', (q) => q.tensor({ type: 'BFloat16Storage', key: '1', numel: 2, shape: [2] })],
      ['n', (q) => q.tensor({ type: 'LongStorage', key: '2', numel: 1, shape: [] })],
      ['d', (q) => q.tensor({ type: 'DoubleStorage', key: '3', numel: 1, shape: [1] })],
    ]);
    const cp = pytorchFormat.open(torchZip(file('dtypes.pt'), p.done(), { '0': Buffer.from([0, 0x3c, 0, 0xc0]), '1': Buffer.from([0x80, 0x3f, 0, 0xbf]), '2': Buffer.alloc(8), '3': Buffer.alloc(8) }));
    assert.deepEqual(cp.tensors.map((t) => t.dtype), ['float16', 'bfloat16', 'int64', 'float64']);
    assert.deepEqual(Array.from(loadTensor(cp.tensors[0]).data), [0x3c00, 0xc000]);
    assert.deepEqual(Array.from(loadTensor(cp.tensors[1]).data), [0x3f80, 0xbf00]);
  });

  it('a deflated storage entry is decoded but never patched', () => {
    const p = new Pickle().dict([['w', (q) => q.tensor({ key: '0', numel: 3, shape: [3] })]]);
    const cp = pytorchFormat.open(torchZip(file('deflate.pt'), p.done(), { '0': f32([1, 2, 3]) }, { deflate: ['0'] }));
    assert.deepEqual(Array.from(loadTensor(cp.tensors[0]).data), [1, 2, 3]);
    assert.match(cp.tensors[0].readOnlyReason ?? '', /compressed/);
  });

  it('zip64 records and extra fields: read, patched, CRCs rewritten (unzip agrees)', () => {
    const p = new Pickle().dict([['w', (q) => q.tensor({ key: '0', numel: 4, shape: [4] })]]);
    const path = torchZip(file('zip64.pt'), p.done(), { '0': f32([1, 2, 3, 4]) }, { zip64: true });
    checkZipCrcs(path);
    const cp = pytorchFormat.open(path);
    const out = file('zip64.out.pt');
    pytorchFormat.write(cp, new Map([['w', scaled(cp, 'w', 0.5)]]), out);
    assert.deepEqual(Array.from(loadTensor(pytorchFormat.open(out).tensors[0]).data), [0.5, 1, 1.5, 2]);
    checkZipCrcs(out);
  });

  it('a sparse checkpoint over 4 GiB: storages past 2^32 read by position, no whole-file buffer', () => {
    const path = file('huge.pt');
    const p = new Pickle().dict([
      ['small', (q) => q.tensor({ key: '0', numel: 2, shape: [2] })],
      ['far', (q) => q.tensor({ key: '1', numel: 3, shape: [3] })],
    ]);
    const size = writeZip(path, [
      { name: 'archive/data.pkl', data: p.done() },
      { name: 'archive/data/0', data: f32([1, 2]) },
      { name: 'archive/data/1', data: f32([7, 8, 9]), gapBefore: 4.5 * 2 ** 30 },
    ]);
    const rssBefore = process.memoryUsage().rss;
    const cp = pytorchFormat.open(path);
    assert.ok(size > 2 ** 32);
    const far = cp.tensors[1];
    assert.ok(far.offset > 2 ** 32, `offset ${far.offset}`);
    assert.deepEqual(Array.from(loadTensor(far).data), [7, 8, 9]);
    assert.ok(process.memoryUsage().rss - rssBefore < 256 * 2 ** 20);
  });

  it('a legacy file with storages of two dtypes and a storage view', () => {
    const p = new Pickle().dict([
      ['a', (q) => q.tensor({ key: 'k1', numel: 2, shape: [2] })],
      ['b', (q) => q.tensor({ type: 'DoubleStorage', key: 'k2', numel: 1, shape: [1] })],
      ['v', (q) => q.tensor({ key: 'k3', numel: 5, shape: [2], view: ['k3v', 3, 2] })],
    ]);
    const path = legacyFile(file('multi_legacy.pt'), p.done(), [['k1', f32([1, 2]), 4], ['k2', Buffer.from(Float64Array.from([9]).buffer), 8], ['k3', f32([0, 1, 2, 3, 4]), 4]]);
    const cp = pytorchFormat.open(path);
    assert.deepEqual(Array.from(loadTensor(cp.tensors[0]).data), [1, 2]);
    assert.deepEqual(Array.from(loadTensor(cp.tensors[1]).data), [9]);
    assert.deepEqual(Array.from(loadTensor(cp.tensors[2]).data), [3, 4]);
    const tooFar = legacyFile(file('view_far.pt'), new Pickle().dict([['v', (q) => q.tensor({ key: 'k3', numel: 5, shape: [2], view: ['k3v', 4, 2] })]]).done(), [['k3', f32([0, 1, 2, 3, 4]), 4]]);
    assertFileError(tooFar, () => pytorchFormat.open(tooFar), /storage view k3v \(2 elements at 4\) lies outside storage k3/);
    const out = file('multi_legacy.out.pt');
    pytorchFormat.write(cp, new Map([['a', scaled(cp, 'a', 10)]]), out);
    const before = readFileSync(path);
    const afterBytes = readFileSync(out);
    for (let i = 0; i < before.length; i++) if (i < cp.tensors[0].offset || i >= cp.tensors[0].offset + 8) assert.equal(afterBytes[i], before[i]);
  });
});

describe('damaged checkpoints: one Error naming the file and the problem', () => {
  const good = (): Buffer => new Pickle().dict([['w', (q) => q.tensor({ key: '0', numel: 4, shape: [2, 2] })]]).done();

  it('missing, too small and absurd storages and shapes', () => {
    const cases: [string, Buffer, Record<string, Buffer>, RegExp][] = [
      ['no storage entry', good(), {}, /storage 0, but the archive has no entry archive\/data\/0/],
      ['short storage', good(), { '0': f32([1, 2]) }, /storage data\/0 holds 8 bytes, but the pickle says 4 elements/],
      ['view past storage', new Pickle().dict([['w', (q) => q.tensor({ key: '0', numel: 4, offset: 2, shape: [2, 2] })]]).done(), { '0': f32([1, 2, 3, 4]) }, /reaches element 6 of storage data\/0, which holds 4/],
      ['absurd shape', new Pickle().dict([['w', (q) => q.tensor({ key: '0', numel: 4, shape: [2 ** 30, 2 ** 30, 2 ** 30], stride: [0, 0, 0] })]]).done(), { '0': f32([1, 2, 3, 4]) }, /impossible shape/],
      ['negative dim', new Pickle().dict([['w', (q) => q.tensor({ key: '0', numel: 4, shape: [-2, 2], stride: [2, 1] })]]).done(), { '0': f32([1, 2, 3, 4]) }, /impossible shape/],
      ['unknown storage type', new Pickle().dict([['w', (q) => q.tensor({ type: 'NopeStorage', key: '0', numel: 4, shape: [4] })]]).done(), { '0': f32([1, 2, 3, 4]) }, /not a known torch storage type/],
      ['bad pickle', Buffer.from('\x80\x02}X\x05\x00', 'latin1'), {}, /archive\/data\.pkl: .*runs past the end|ends early/],
    ];
    for (const [what, pkl, storages, re] of cases) {
      const path = torchZip(file(`${what.replace(/ /g, '_')}.pt`), pkl, storages);
      assertFileError(path, () => pytorchFormat.open(path), re);
    }
  });

  it('zip damage: central directory outside the file, bad local header, duplicates, no data.pkl', () => {
    const base = torchZip(file('base.pt'), good(), { '0': f32([1, 2, 3, 4]) });
    const bytes = readFileSync(base);
    const eocd = bytes.lastIndexOf(Buffer.from('PK\x05\x06', 'latin1'));
    const eocd64 = bytes.lastIndexOf(Buffer.from('PK\x06\x06', 'latin1'));

    const outside = Buffer.from(bytes);
    outside.writeBigUInt64LE(BigInt(bytes.length + 1000), eocd64 + 48);
    const p1 = file('cd_outside.pt');
    writeFileSync(p1, outside);
    assertFileError(p1, () => pytorchFormat.open(p1), /central directory .* lies outside the file/);

    const noZip64 = Buffer.from(bytes);
    noZip64.writeUInt32LE(0, eocd - 20); // break the zip64 locator: the classic record must stand alone
    noZip64.writeUInt32LE(0x7fffffff, eocd + 16);
    const p2 = file('cd_outside32.pt');
    writeFileSync(p2, noZip64);
    assertFileError(p2, () => pytorchFormat.open(p2), /lies outside the file/);

    const renamed = Buffer.from(bytes);
    renamed.write('X', 30 + 'archive/'.length, 'latin1');
    const p3 = file('localname.pt');
    writeFileSync(p3, renamed);
    assertFileError(p3, () => pytorchFormat.open(p3), /local header names/);

    const dup = writeZip(file('dup.pt'), [{ name: 'archive/data.pkl', data: good() }, { name: 'archive/data.pkl', data: good() }]);
    assert.ok(dup > 0);
    const p4 = join(work, `${serial - 1}-dup.pt`);
    assertFileError(p4, () => pytorchFormat.open(p4), /two entries named archive\/data\.pkl/);

    const p5 = file('plain.zip');
    writeZip(p5, [{ name: 'readme.txt', data: Buffer.from('hi') }]);
    assertFileError(p5, () => pytorchFormat.open(p5), /without data\.pkl/);
  });

  it('wrong magic, empty and truncated files', () => {
    const p1 = file('text.pt');
    writeFileSync(p1, 'hello world, not a checkpoint');
    assertFileError(p1, () => pytorchFormat.open(p1), /wrong magic/);
    const p2 = file('empty.pt');
    writeFileSync(p2, '');
    assertFileError(p2, () => pytorchFormat.open(p2), /empty/);
    const p3 = file('missing.pt');
    assertFileError(p3, () => pytorchFormat.open(p3), /cannot read the file \(ENOENT\)/);
    const legacy = readFileSync(legacyFile(file('l.pt'), good(), [['0', f32([1, 2, 3, 4]), 4]]));
    const p4 = file('l_trunc.pt');
    writeFileSync(p4, legacy.subarray(0, legacy.length - 3));
    assertFileError(p4, () => pytorchFormat.open(p4), /storage 0 claims 4 elements .* past the end of the file/);
    const be = file('byteorder.pt');
    writeZip(be, [{ name: 'archive/data.pkl', data: good() }, { name: 'archive/data/0', data: f32([1, 2, 3, 4]) }, { name: 'archive/byteorder', data: Buffer.from('big') }]);
    assertFileError(be, () => pytorchFormat.open(be), /big-endian/);
    const big = legacyFile(file('big_endian.pt'), good(), [['0', f32([1, 2, 3, 4]), 4]], new Pickle().raw('}').str('little_endian').raw('\x89s').done());
    assertFileError(big, () => pytorchFormat.open(big), /big-endian/);
  });

  it('sniffing: torch zips and legacy files yes; other zips and pickles no', () => {
    const head = (p: string): Buffer => readFileSync(p).subarray(0, 4096);
    assert.equal(pytorchFormat.sniff(head(torchZip(file('s.pt'), good(), { '0': f32([1, 2, 3, 4]) })), 's.pt'), true);
    assert.equal(pytorchFormat.sniff(head(legacyFile(file('s_l.pt'), good(), [['0', f32([1, 2, 3, 4]), 4]])), 's.pt'), true);
    const other = file('o.zip');
    writeZip(other, [{ name: 'readme.txt', data: Buffer.from('x') }]);
    assert.equal(pytorchFormat.sniff(head(other), other), false);
    assert.equal(pytorchFormat.sniff(good(), 'x.pkl'), false);
  });
});
