// Small hostile files built byte by byte: pickles whose shared or nested structure explodes
// when walked naively, allocation and decompression bombs, and a TF.js module that makes a
// literal parser work hard. Each builder writes one file and returns its path.
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';

// ---- pickles ----------------------------------------------------------------------------------

export class Pickle {
  private parts: Buffer[] = [Buffer.from([0x80, 2])];
  raw(bytes: Buffer | string): this {
    this.parts.push(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    return this;
  }
  global(module: string, name: string): this {
    return this.raw(`c${module}\n${name}\n`);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return this.raw('X').raw(len).raw(b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(Buffer.from([0x4b, n]));
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    return this.raw(b);
  }
  ints(ns: number[]): this {
    this.raw('(');
    ns.forEach((n) => this.int(n));
    return this.raw('t');
  }
  put(i: number): this {
    const b = Buffer.alloc(5);
    b[0] = 0x72; // LONG_BINPUT
    b.writeUInt32LE(i, 1);
    return this.raw(b);
  }
  get(i: number): this {
    const b = Buffer.alloc(5);
    b[0] = 0x6a; // LONG_BINGET
    b.writeUInt32LE(i, 1);
    return this.raw(b);
  }
  /** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
  tensor(o: { type?: string; key: string; numel: number; offset?: number; shape: number[]; stride?: number[]; view?: [string, number, number] }): this {
    const stride = o.stride ?? o.shape.map((_, i) => o.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    this.global('torch._utils', '_rebuild_tensor_v2').raw('(');
    this.raw('(').str('storage').global('torch', o.type ?? 'FloatStorage').str(o.key).str('cpu').int(o.numel);
    // Legacy persistent ids end in view metadata (view_key, offset, size) or None.
    if (o.view) this.raw('(').str(o.view[0]).int(o.view[1]).int(o.view[2]).raw('t');
    this.raw('tQ');
    this.int(o.offset ?? 0).ints(o.shape).ints(stride).raw('\x89').global('collections', 'OrderedDict').raw(')R');
    return this.raw('tR');
  }
  /** A dict built from [key, writer] pairs. */
  dict(items: [string, (p: Pickle) => void][]): this {
    this.raw('}(');
    for (const [k, v] of items) {
      this.str(k);
      v(this);
    }
    return this.raw('u');
  }
  done(): Buffer {
    return Buffer.concat([...this.parts, Buffer.from('.')]);
  }
}

// ---- a zip writer shaped like PyTorch's --------------------------------------------------------

export interface ZipInput {
  name: string;
  data: Buffer;
  deflate?: boolean;
}

const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** A plain (not zip64) archive; deflated entries are compressed at level 9. Returns its size. */
export function writeZip(path: string, inputs: ZipInput[]): number {
  const out: Buffer[] = [];
  const central: Buffer[] = [];
  let pos = 0;
  for (const e of inputs) {
    const stored = e.deflate ? deflateRawSync(e.data, { level: 9 }) : e.data;
    const crc = crc32(e.data) >>> 0;
    const name = Buffer.from(e.name);
    const method = e.deflate ? 8 : 0;
    const local = Buffer.concat([u32(0x04034b50), u16(20), u16(0), u16(method), u16(0), u16(0), u32(crc), u32(stored.length), u32(e.data.length), u16(name.length), u16(0), name]);
    central.push(Buffer.concat([u32(0x02014b50), u16(20), u16(20), u16(0), u16(method), u16(0), u16(0), u32(crc), u32(stored.length), u32(e.data.length), u16(name.length), u16(0), u16(0), u16(0), u16(0), u32(0), u32(pos), name]));
    out.push(local, stored);
    pos += local.length + stored.length;
  }
  const cd = Buffer.concat(central);
  out.push(cd, Buffer.concat([u32(0x06054b50), u16(0), u16(0), u16(inputs.length), u16(inputs.length), u32(cd.length), u32(pos), u16(0)]));
  const all = Buffer.concat(out);
  writeFileSync(path, all);
  return all.length;
}

export function torchZip(path: string, pickle: Buffer, storages: Record<string, Buffer> = {}, deflatePickle = false): string {
  writeZip(path, [{ name: 'archive/data.pkl', data: pickle, deflate: deflatePickle }, ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })), { name: 'archive/version', data: Buffer.from('3\n') }]);
  return path;
}

/** The legacy format: magic, protocol, sys_info, object, storage keys, then the storages. */
export function legacyFile(path: string, object: Buffer, storages: [string, Buffer, number][] = []): string {
  const parts = [Buffer.from('80028a0a6cfc9c46f9206aa850192e', 'hex'), Buffer.from('80024de9032e', 'hex'), new Pickle().raw('}').str('little_endian').raw('\x88s').done(), object];
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

// ---- the bombs ---------------------------------------------------------------------------------

/** {'weight': tensor, 'x': L_n} with L_{i+1} = [L_i, L_i]: 2^n paths through n lists. */
export function sharedDagPickle(n = 200): Buffer {
  const p = new Pickle().raw('}').str('weight').tensor({ key: '0', numel: 4, shape: [4] }).raw('s').str('x');
  p.raw(']').put(0).raw('0');
  for (let i = 0; i < n; i++) p.raw('(').get(i).get(i).raw('l').put(i + 1).raw('0');
  return p.get(n).raw('s').done();
}

/** {'weight': tensor, 'x': [[[…]]]} nested `depth` deep (MARKs, then LISTs). */
export function deepListPickle(depth = 100_000): Buffer {
  return new Pickle().raw('}').str('weight').tensor({ key: '0', numel: 4, shape: [4] }).raw('s').str('x').raw('('.repeat(depth)).raw('l'.repeat(depth)).raw('s').done();
}

/** {'weight': tensor, 'x': L} with L = [L]. */
export function selfListPickle(): Buffer {
  return new Pickle().raw('}').str('weight').tensor({ key: '0', numel: 4, shape: [4] }).raw('s').str('x').raw(']').put(0).get(0).raw('a').raw('s').done();
}

/** One opcode with a length field of `declared` bytes followed by `present` bytes (zeros). */
export function lengthPickle(op: 'LONG4' | 'BINUNICODE8' | 'BINBYTES8', declared: number, present = declared): Buffer {
  const code = { LONG4: 0x8b, BINUNICODE8: 0x8d, BINBYTES8: 0x8e }[op];
  const len = Buffer.alloc(op === 'LONG4' ? 4 : 8);
  if (op === 'LONG4') len.writeInt32LE(declared);
  else len.writeBigUInt64LE(BigInt(declared));
  const body = Buffer.alloc(present, op === 'LONG4' ? 0x01 : 0x41);
  return new Pickle().raw('}').str('weight').tensor({ key: '0', numel: 4, shape: [4] }).raw('s').str('x').raw(Buffer.from([code])).raw(len).raw(body).raw('s').done();
}

/** A 4-element storage viewed with stride 0 as a tensor of `elements` elements. */
export function strideZeroPickle(shape = [1 << 15, 1 << 15]): Buffer {
  return new Pickle().raw('}').str('weight').tensor({ key: '0', numel: 4, shape, stride: shape.map(() => 0) }).raw('s').done();
}

/** `n` pushes of empty lists inside one list: a pickle that is nothing but allocation. */
export function manyListsPickle(bytes: number): Buffer {
  return new Pickle().raw('}').str('weight').tensor({ key: '0', numel: 4, shape: [4] }).raw('s').str('x').raw('(').raw(Buffer.alloc(bytes, 0x5d)).raw('ls').done();
}

export const f32 = (values: number[]): Buffer => Buffer.from(Float32Array.from(values).buffer);

/** An .npy of float32 zeros with the given shape (all its bytes present). */
export function npyBytes(shape: number[], dataBytes?: number): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  const n = shape.reduce((a, b) => a * b, 1) * 4;
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.alloc(dataBytes ?? n)]);
}

/** An .npy header whose shape is a tuple nested `depth` deep. */
export function deepNpyBytes(depth = 20_000, version = 2): Buffer {
  const header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${'('.repeat(depth)}${')'.repeat(depth)}, }\n`;
  const head = Buffer.alloc(12);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  head.writeUInt32LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1')]);
}

/** A JS module of `n` nested, never closed objects, each with a modelTopology key (~15 bytes each). */
export function hostileTfjsModule(n = 2000): string {
  return `export default ${'{modelTopology:'.repeat(n)}1;`;
}

/** Zero-filled sparse bytes written at an offset (for files that need no content). */
export function writeAt(path: string, offset: number, data: Buffer): void {
  const fd = openSync(path, 'a');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}
