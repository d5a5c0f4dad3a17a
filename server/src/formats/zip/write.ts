// A writer that streams a new archive entry by entry: new content is encoded in memory one
// entry at a time, unchanged entries are copied byte for byte in chunks, so writing back a
// large archive never holds more than one changed entry.
import { closeSync, openSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import { replaceByWriting, writeAll } from '../core/safeWrite';
import type { ZipDirectory, ZipEntry } from './directory';
import { verifyZip } from './file';
import {
  CENTRAL_HEADER_SIZE, DEFLATED, EOCD64_SIZE, EOCD_SIZE, FLAG_UTF8, LOCAL_HEADER_SIZE, LOCATOR64_SIZE,
  MAX16, MAX32, SIG_CENTRAL, SIG_EOCD, SIG_EOCD64, SIG_LOCAL, SIG_LOCATOR64, STORED,
} from './format';
import { readFully } from './readAt';
import { FileError } from '../../errors/fileError';

/** One entry of a new archive: new content, or an existing entry copied byte for byte. */
export type ZipItem =
  | { name: string; method: number; data: Buffer; dosTime: number; dosDate: number }
  | { copy: ZipEntry; from: string };

interface Written {
  name: Buffer;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
  dosTime: number;
  dosDate: number;
  utf8: boolean;
}

/** Sizes go in the local header too (no data descriptors), so a streaming unzip can read it. */
function localHeader(w: Written): Buffer {
  const zip64 = w.size >= MAX32 || w.compressedSize >= MAX32;
  const extra = zip64 ? Buffer.alloc(20) : Buffer.alloc(0);
  if (zip64) {
    extra.writeUInt16LE(0x0001, 0);
    extra.writeUInt16LE(16, 2);
    extra.writeBigUInt64LE(BigInt(w.size), 4);
    extra.writeBigUInt64LE(BigInt(w.compressedSize), 12);
  }
  const h = Buffer.alloc(LOCAL_HEADER_SIZE);
  h.writeUInt32LE(SIG_LOCAL, 0);
  h.writeUInt16LE(zip64 ? 45 : 20, 4);
  h.writeUInt16LE(w.utf8 ? FLAG_UTF8 : 0, 6);
  h.writeUInt16LE(w.method, 8);
  h.writeUInt16LE(w.dosTime, 10);
  h.writeUInt16LE(w.dosDate, 12);
  h.writeUInt32LE(w.crc, 14);
  h.writeUInt32LE(zip64 ? MAX32 : w.compressedSize, 18);
  h.writeUInt32LE(zip64 ? MAX32 : w.size, 22);
  h.writeUInt16LE(w.name.length, 26);
  h.writeUInt16LE(extra.length, 28);
  return Buffer.concat([h, w.name, extra]);
}

function centralHeader(w: Written): Buffer {
  const vals: bigint[] = [];
  if (w.size >= MAX32) vals.push(BigInt(w.size));
  if (w.compressedSize >= MAX32) vals.push(BigInt(w.compressedSize));
  if (w.offset >= MAX32) vals.push(BigInt(w.offset));
  const extra = Buffer.alloc(vals.length ? 4 + 8 * vals.length : 0);
  if (vals.length) {
    extra.writeUInt16LE(0x0001, 0);
    extra.writeUInt16LE(8 * vals.length, 2);
    vals.forEach((v, i) => extra.writeBigUInt64LE(v, 4 + 8 * i));
  }
  const h = Buffer.alloc(CENTRAL_HEADER_SIZE);
  h.writeUInt32LE(SIG_CENTRAL, 0);
  h.writeUInt16LE(vals.length ? 45 : 20, 4);
  h.writeUInt16LE(vals.length ? 45 : 20, 6);
  h.writeUInt16LE(w.utf8 ? FLAG_UTF8 : 0, 8);
  h.writeUInt16LE(w.method, 10);
  h.writeUInt16LE(w.dosTime, 12);
  h.writeUInt16LE(w.dosDate, 14);
  h.writeUInt32LE(w.crc, 16);
  h.writeUInt32LE(w.compressedSize >= MAX32 ? MAX32 : w.compressedSize, 20);
  h.writeUInt32LE(w.size >= MAX32 ? MAX32 : w.size, 24);
  h.writeUInt16LE(w.name.length, 28);
  h.writeUInt16LE(extra.length, 30);
  h.writeUInt32LE(w.offset >= MAX32 ? MAX32 : w.offset, 42);
  return Buffer.concat([h, w.name, extra]);
}

/** Zip64 end records only when a count, size or offset does not fit the classic one. */
function endRecords(count: number, cdOffset: number, cdSize: number): Buffer {
  const parts: Buffer[] = [];
  const zip64 = count >= MAX16 || cdOffset >= MAX32 || cdSize >= MAX32;
  if (zip64) {
    const rec = Buffer.alloc(EOCD64_SIZE);
    rec.writeUInt32LE(SIG_EOCD64, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(count), 24);
    rec.writeBigUInt64LE(BigInt(count), 32);
    rec.writeBigUInt64LE(BigInt(cdSize), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(LOCATOR64_SIZE);
    loc.writeUInt32LE(SIG_LOCATOR64, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
    loc.writeUInt32LE(1, 16);
    parts.push(rec, loc);
  }
  const end = Buffer.alloc(EOCD_SIZE);
  end.writeUInt32LE(SIG_EOCD, 0);
  end.writeUInt16LE(Math.min(count, MAX16), 8);
  end.writeUInt16LE(Math.min(count, MAX16), 10);
  end.writeUInt32LE(Math.min(cdSize, MAX32), 12);
  end.writeUInt32LE(Math.min(cdOffset, MAX32), 16);
  parts.push(end);
  return Buffer.concat(parts);
}

const COPY_CHUNK = 8 << 20;

/** Copies [offset, offset + length) of `from` to `fd` at `position`, in chunks. */
function copyRange(from: string, offset: number, length: number, fd: number, position: number): void {
  const src = openSync(from, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(length, 1)));
    for (let done = 0; done < length; ) {
      const n = Math.min(buf.length, length - done);
      try {
        readFully(src, buf.subarray(0, n), offset + done);
      } catch (e) {
        throw new FileError(from, `${(e as Error).message} while copying zip entry bytes`, 'unreadable', { cause: e });
      }
      writeAll(fd, buf.subarray(0, n), position + done);
      done += n;
    }
  } finally {
    closeSync(src);
  }
}

const isUtf8Name = (name: string): boolean => /[^\x00-\x7f]/.test(name);

/** Writes a complete archive to an open file, from position 0. */
export function writeZip(fd: number, items: readonly ZipItem[]): void {
  const written: Written[] = [];
  let pos = 0;
  for (const item of items) {
    if ('copy' in item) {
      const e = item.copy;
      const w: Written = { name: Buffer.from(e.name, 'utf8'), method: e.method, crc: e.crc, compressedSize: e.compressedSize, size: e.size, offset: pos, dosTime: e.dosTime, dosDate: e.dosDate, utf8: isUtf8Name(e.name) };
      const h = localHeader(w);
      writeAll(fd, h, pos);
      copyRange(item.from, e.dataStart, e.compressedSize, fd, pos + h.length);
      pos += h.length + e.compressedSize;
      written.push(w);
      continue;
    }
    if (item.method !== STORED && item.method !== DEFLATED) throw new Error(`zip entry ${item.name}: cannot write compression method ${item.method}`);
    const body = item.method === DEFLATED ? deflateRawSync(item.data) : item.data;
    const w: Written = { name: Buffer.from(item.name, 'utf8'), method: item.method, crc: crc32(item.data) >>> 0, compressedSize: body.length, size: item.data.length, offset: pos, dosTime: item.dosTime, dosDate: item.dosDate, utf8: isUtf8Name(item.name) };
    const h = localHeader(w);
    writeAll(fd, h, pos);
    writeAll(fd, body, pos + h.length);
    pos += h.length + body.length;
    written.push(w);
  }
  const cd = Buffer.concat(written.map(centralHeader));
  writeAll(fd, cd, pos);
  writeAll(fd, endRecords(written.length, pos, cd.length), pos + cd.length);
}

export interface ZipFileOptions {
  /** Runs on the written temporary archive after its CRCs are checked; throw to abandon. */
  check?: (tmpPath: string, dir: ZipDirectory) => void;
  /** When replacing an existing target, keep it as `<target>.bak`. */
  backup?: boolean;
}

/** A new archive written beside `target`, verified, then renamed into place. */
export function writeZipFile(target: string, items: readonly ZipItem[], opts: ZipFileOptions = {}): void {
  replaceByWriting(target, (fd) => writeZip(fd, items), { backup: opts.backup, verify: (tmp) => opts.check?.(tmp, verifyZip(tmp)) });
}
