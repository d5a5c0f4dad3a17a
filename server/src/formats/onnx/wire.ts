// Protobuf wire format, read from a file by offset. The walker looks only at the small
// structural fields and steps over the large ones (raw_data), so a model of any size is read
// through a small window instead of being loaded whole.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Wire types of the protobuf encoding. */
export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;
export const FIXED32 = 5;

/** Thrown for malformed input; the message already starts with the file's path. */
export class OnnxFormatError extends Error {}

export interface SourceOptions {
  /** Files up to this size are read at once: fewer system calls, same result. */
  wholeFileLimit?: number;
  /** Bytes read per refill of the window over larger files. */
  window?: number;
}

/** Random access to a file's bytes through a small window (or the whole file when small). */
export class ByteSource {
  readonly size: number;
  private buf: Buffer;
  private bufStart = 0;
  private fd: number | undefined;
  private readonly window: number;

  private constructor(readonly path: string, size: number, buf: Buffer, fd: number | undefined, window: number) {
    this.size = size;
    this.buf = buf;
    this.fd = fd;
    this.window = window;
  }

  static open(path: string, opts: SourceOptions = {}): ByteSource {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= (opts.wholeFileLimit ?? 16 << 20)) {
        const buf = Buffer.allocUnsafe(size);
        let done = 0;
        while (done < size) {
          const n = readSync(fd, buf, done, size - done, done);
          if (n === 0) break;
          done += n;
        }
        closeSync(fd);
        return new ByteSource(path, done, buf.subarray(0, done), undefined, 0);
      }
      return new ByteSource(path, size, Buffer.alloc(0), fd, opts.window ?? 1 << 16);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  static fromBuffer(path: string, buf: Buffer): ByteSource {
    return new ByteSource(path, buf.length, buf, undefined, 0);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  fail(what: string): never {
    throw new OnnxFormatError(`${this.path}: ${what}`);
  }

  /** Makes [offset, offset + length) available in the window; returns its index there. */
  private ensure(offset: number, length: number): number {
    if (offset < 0 || offset + length > this.size) this.fail(`the file ends at byte ${this.size}, but data is needed up to byte ${offset + length} (truncated?)`);
    const rel = offset - this.bufStart;
    if (rel >= 0 && rel + length <= this.buf.length) return rel;
    if (this.fd === undefined) this.fail(`read past the end of the data at byte ${offset}`);
    const want = Math.min(Math.max(this.window, length), this.size - offset);
    const buf = Buffer.allocUnsafe(want);
    let done = 0;
    while (done < want) {
      const n = readSync(this.fd, buf, done, want - done, offset + done);
      if (n === 0) this.fail(`the file ended early at byte ${offset + done} (it changed while being read?)`);
      done += n;
    }
    this.buf = buf;
    this.bufStart = offset;
    return 0;
  }

  // Each accessor moves the window first and reads `this.buf` after: the window may be replaced.
  byte(offset: number): number {
    const i = this.ensure(offset, 1);
    return this.buf[i];
  }

  /** A copy of [offset, offset + length): safe to keep after the window moves. */
  bytes(offset: number, length: number): Buffer {
    const i = this.ensure(offset, length);
    return Buffer.from(this.buf.subarray(i, i + length));
  }

  utf8(offset: number, length: number): string {
    const i = this.ensure(offset, length);
    return this.buf.toString('utf8', i, i + length);
  }

  floatLE(offset: number): number {
    const i = this.ensure(offset, 4);
    return this.buf.readFloatLE(i);
  }

  doubleLE(offset: number): number {
    const i = this.ensure(offset, 8);
    return this.buf.readDoubleLE(i);
  }
}

/** A varint's value (as a JS number, two's complement for negative int64) and its end. */
export interface Varint {
  value: number;
  next: number;
}

const TWO_64 = 2n ** 64n;

export function readVarint(src: ByteSource, pos: number, end: number): Varint {
  // Fast path: values below 2^28 (all lengths, tags and most dims).
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if (pos + i >= end) src.fail(`a varint at byte ${pos} runs past the end of its message (byte ${end})`);
    const b = src.byte(pos + i);
    value |= (b & 0x7f) << (7 * i);
    if (b < 0x80) return { value, next: pos + i + 1 };
  }
  let big = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) src.fail(`a varint at byte ${pos} runs past the end of its message (byte ${end})`);
    const b = src.byte(pos + i);
    big |= BigInt(b & 0x7f) << BigInt(7 * i);
    if (b < 0x80) {
      if (i === 9 && b > 1) src.fail(`bad varint at byte ${pos} (more than 64 bits)`);
      const signed = big >= 2n ** 63n ? big - TWO_64 : big;
      return { value: Number(signed), next: pos + i + 1 };
    }
  }
  src.fail(`bad varint at byte ${pos} (longer than 10 bytes)`);
}

/** One field of a message. For LEN fields, [start, end) is the payload; for others, the value. */
export interface Field {
  num: number;
  wire: number;
  tagPos: number;
  /** Where a LEN field's length varint starts, and its size in bytes. */
  lenPos: number;
  lenSize: number;
  start: number;
  end: number;
  /** The value of a VARINT field. */
  value: number;
}

/** Calls `visit` for each field of the message in [start, end); checks every bound. */
export function forEachField(src: ByteSource, start: number, end: number, visit: (f: Field) => void): void {
  let pos = start;
  while (pos < end) {
    const tagPos = pos;
    const tag = readVarint(src, pos, end);
    pos = tag.next;
    if (tag.value < 0 || tag.value > 0x7fffffff) src.fail(`bad field tag at byte ${tagPos}`);
    const num = tag.value >>> 3;
    const wire = tag.value & 7;
    if (num === 0) src.fail(`bad field number 0 at byte ${tagPos}`);
    const f: Field = { num, wire, tagPos, lenPos: pos, lenSize: 0, start: pos, end: pos, value: 0 };
    switch (wire) {
      case VARINT: {
        const v = readVarint(src, pos, end);
        f.value = v.value;
        f.end = v.next;
        break;
      }
      case FIXED64:
        f.end = pos + 8;
        break;
      case FIXED32:
        f.end = pos + 4;
        break;
      case LEN: {
        const len = readVarint(src, pos, end);
        if (len.value < 0) src.fail(`negative length in field ${num} at byte ${tagPos}`);
        f.lenSize = len.next - pos;
        f.start = len.next;
        f.end = len.next + len.value;
        break;
      }
      default:
        src.fail(`unsupported wire type ${wire} in field ${num} at byte ${tagPos} (corrupt file?)`);
    }
    if (f.end > end) {
      src.fail(`field ${num} at byte ${tagPos} claims ${f.end - f.start} bytes, running past the end of its message at byte ${end}${end === src.size ? ' (truncated file?)' : ''}`);
    }
    visit(f);
    pos = f.end;
  }
}

export function encodeVarint(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`cannot encode ${value} as an unsigned varint`);
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

/** Bytes of a varint holding `value` (non-negative). */
export function varintSize(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}
