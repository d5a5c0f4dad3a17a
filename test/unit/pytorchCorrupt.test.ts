// Damaged copies of real PyTorch files — truncated, bytes flipped, length fields grown —
// must open (when the damage is harmless) or fail with one plain Error that names the file;
// never a TypeError or RangeError from inside the reader, never a partial output file.
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { ChangedWhileReading, isFloatDType, loadTensor, type Checkpoint } from '../../server/src/formats/core/checkpoint';
import { pytorchFormat } from '../../server/src/formats/pytorch/index';
import { readZipDirectory } from '../../server/src/formats/zip';
import { FileError } from '../../server/src/errors/fileError';
import { scratchDir } from '../support/scratch';

const MODELS = join(__dirname, '..', 'fixtures', 'models');
const FILES = ['mlp_relu.pt', 'mlp_relu_legacy.pt', 'cnn_bn_legacy.pt', 'mlp_relu_module.pt', 'mlp_relu_script.pt', 'mlp_f16.pt'];
const work = scratchDir('synbal-ptbad-');
after(() => rmSync(work, { recursive: true, force: true }));

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

interface Outcome {
  opened: number;
  refused: number;
}

/** Opens a damaged file; on success reads every float tensor and tries a write. */
function probe(path: string, bytes: Buffer, outcome: Outcome, what: string): void {
  writeFileSync(path, bytes);
  let cp: Checkpoint;
  try {
    cp = pytorchFormat.open(path);
  } catch (e) {
    const err = e as Error;
    assert.equal(err.constructor, FileError, `${what}: ${err.constructor.name}: ${err.message}`);
    assert.ok(err.message.startsWith(`${path}: `), `${what}: ${err.message}`);
    const cause = err.cause;
    assert.ok(!(cause instanceof TypeError || cause instanceof RangeError || cause instanceof ReferenceError), `${what}: internal ${String(cause)}\n${(cause as Error)?.stack}`);
    outcome.refused++;
    return;
  }
  outcome.opened++;
  for (const t of cp.tensors) {
    assert.ok(t.offset + t.byteLength <= bytes.length || t.encoding !== undefined, `${what}: ${t.name} inside the file`);
    if (isFloatDType(t.dtype) && (t.encoding ?? 'raw') === 'raw') loadTensor(t);
  }
  const w = cp.tensors.find((t) => isFloatDType(t.dtype) && !t.readOnlyReason);
  if (!w) return;
  const target = `${path}.out`;
  try {
    const v = loadTensor(w);
    pytorchFormat.write(cp, new Map([[w.name, v]]), target);
    pytorchFormat.open(target);
  } catch (e) {
    const err = e as Error;
    assert.equal(err.constructor, FileError, `${what} (write): ${err.message}`);
    assert.ok(err.message.startsWith(`${target}: `) || err.message.startsWith(`${path}: `), `${what} (write): ${err.message}`);
    assert.equal(existsSync(target), false, `${what}: no output after a failed write`);
  }
  rmSync(target, { force: true });
}

/** Offsets of length fields worth growing: zip sizes and name/extra lengths, pickle string lengths. */
function lengthFields(bytes: Buffer): { at: number; width: 2 | 4 | 8 }[] {
  const out: { at: number; width: 2 | 4 | 8 }[] = [];
  for (let i = 0; i + 4 <= bytes.length; i++) {
    const sig = bytes.readUInt32LE(i);
    if (sig === 0x02014b50) out.push({ at: i + 20, width: 4 }, { at: i + 24, width: 4 }, { at: i + 28, width: 2 }, { at: i + 30, width: 2 }, { at: i + 42, width: 4 });
    else if (sig === 0x04034b50) out.push({ at: i + 26, width: 2 }, { at: i + 28, width: 2 });
    else if (sig === 0x06064b50) out.push({ at: i + 32, width: 8 }, { at: i + 40, width: 8 }, { at: i + 48, width: 8 });
    else if (sig === 0x06054b50) out.push({ at: i + 10, width: 2 }, { at: i + 12, width: 4 }, { at: i + 16, width: 4 });
    else if (bytes[i] === 0x58 && i + 5 < bytes.length && bytes.readUInt32LE(i + 1) < 64 && bytes.readUInt32LE(i + 1) > 0) out.push({ at: i + 1, width: 4 });
  }
  return out.filter((f) => f.at + f.width <= bytes.length).slice(0, 120);
}

function grow(bytes: Buffer, f: { at: number; width: 2 | 4 | 8 }, how: number): Buffer {
  const b = Buffer.from(bytes);
  if (f.width === 2) b.writeUInt16LE([b.readUInt16LE(f.at) + 1, 0xffff, b.readUInt16LE(f.at) + 100][how] & 0xffff, f.at);
  else if (f.width === 4) b.writeUInt32LE([b.readUInt32LE(f.at) + 1, 0xffffffff, 0x7fffffff][how] >>> 0, f.at);
  else b.writeBigUInt64LE([b.readBigUInt64LE(f.at) + 1n, 2n ** 63n, 2n ** 40n][how], f.at);
  return b;
}

/** A byte of data.pkl changed and every CRC-32 of it fixed, so the unpickler sees the damage. */
function pickleFlips(bytes: Buffer, count: number, random: () => number): Buffer[] {
  const path = join(work, 'dir-probe.pt');
  writeFileSync(path, bytes);
  const fd = openSync(path, 'r');
  let dataPkl;
  try {
    dataPkl = readZipDirectory(fd, bytes.length).entries.find((e) => e.name.endsWith('/data.pkl'))!;
  } finally {
    closeSync(fd);
  }
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = Buffer.from(bytes);
    const at = dataPkl.dataStart + Math.floor(random() * dataPkl.size);
    b[at] = Math.floor(random() * 256);
    const crc = crc32(b.subarray(dataPkl.dataStart, dataPkl.dataStart + dataPkl.size)) >>> 0;
    b.writeUInt32LE(crc, dataPkl.centralHeaderOffset + 16);
    b.writeUInt32LE(crc, dataPkl.dataStart + dataPkl.size + 4);
    out.push(b);
  }
  return out;
}

describe('damaged copies of real PyTorch files', () => {
  for (const name of FILES) {
    it(`${name}: truncations, flipped bytes, grown lengths`, (t) => {
      const original = readFileSync(join(MODELS, name));
      const random = rng(name.length * 7919 + original.length);
      const path = join(work, `bad-${name}`);
      const outcome: Outcome = { opened: 0, refused: 0 };
      const step = Math.max(1, Math.floor(original.length / 40));
      for (let n = 0; n < original.length; n += step) probe(path, original.subarray(0, n), outcome, `truncated to ${n}`);
      for (let k = 1; k <= 24; k++) probe(path, original.subarray(0, original.length - k), outcome, `last ${k} bytes cut`);
      for (let i = 0; i < 150; i++) {
        const b = Buffer.from(original);
        const at = Math.floor(random() * b.length);
        b[at] ^= 1 + Math.floor(random() * 255);
        probe(path, b, outcome, `byte ${at} flipped`);
      }
      for (const f of lengthFields(original)) for (let how = 0; how < 3; how++) probe(path, grow(original, f, how), outcome, `length at ${f.at} grown (${how})`);
      if (original.readUInt32LE(0) === 0x04034b50) {
        pickleFlips(original, 150, random).forEach((b, i) => probe(path, b, outcome, `data.pkl flip ${i}`));
      }
      t.diagnostic(`${outcome.opened} damaged copies opened, ${outcome.refused} refused`);
      assert.ok(outcome.refused > 50, `refused ${outcome.refused}`);
      assert.ok(outcome.opened > 0, `opened ${outcome.opened}`);
      assert.deepEqual(readdirSync(work).filter((n) => n.endsWith('.tmp') || n.endsWith('.out')), []);
    });
  }

  it('a source truncated after opening: the write fails and leaves nothing behind', () => {
    const path = join(work, 'shrinking.pt');
    const original = readFileSync(join(MODELS, 'mlp_relu.pt'));
    writeFileSync(path, original);
    const cp = pytorchFormat.open(path);
    const w = loadTensor(cp.tensors[0]);
    writeFileSync(path, original.subarray(0, 1000));
    const target = join(work, 'shrinking.out.pt');
    assert.throws(() => pytorchFormat.write(cp, new Map([['0.weight', w]]), target), ChangedWhileReading);
    assert.equal(existsSync(target), false);
  });
});
