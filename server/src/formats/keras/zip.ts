// Zip archives as `.keras` and `.npz` files use them: the central directory (zip64 included),
// where each entry's bytes lie, and a writer that streams a new archive entry by entry.
// Reading the directory ourselves keeps memory near the size of what is actually read.
import { closeSync, copyFileSync, existsSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { temporaryPathFor, writeAll } from '../patch';

export const STORED = 0;
export const DEFLATED = 8;

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated; others cannot be read here. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  /** Where the entry's (compressed) bytes start in the archive. */
  dataOffset: number;
  dosTime: number;
  dosDate: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX32 = 0xffffffff;
const MAX16 = 0xffff;
/** Sanity bound on the number of entries (a directory claiming more is corrupt). */
const MAX_ENTRIES = 1_000_000;

/** Name of the first entry of a zip archive, from the local header at its start (for sniffing). */
export function firstZipEntryName(head: Buffer): string | undefined {
  if (head.length < 30 || head.readUInt32LE(0) !== LOCAL) return undefined;
  const len = head.readUInt16LE(26);
  return head.length >= 30 + len ? head.subarray(30, 30 + len).toString('utf8') : undefined;
}

function fail(path: string, what: string): never {
  throw new Error(`${path}: ${what}`);
}

function readAt(fd: number, position: number, length: number, path: string): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) fail(path, `the zip archive is truncated (wanted ${length} bytes at ${position})`);
    done += n;
  }
  return buf;
}

function big(v: bigint, path: string, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(path, `the zip archive's ${what} (${v}) is impossibly large`);
  return Number(v);
}

/** Zip64 extended information: the 64-bit values of the fields that read 0xFFFFFFFF. */
function zip64Values(extra: Buffer, want: ('size' | 'compressed' | 'offset')[], path: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  let p = 0;
  while (p + 4 <= extra.length) {
    const id = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    if (id === 0x0001) {
      let q = p + 4;
      for (const w of want) {
        if (q + 8 > p + 4 + len) fail(path, `zip entry ${name}: its zip64 field is too short`);
        out.set(w, big(extra.readBigUInt64LE(q), path, `${w} of ${name}`));
        q += 8;
      }
      return out;
    }
    p += 4 + len;
  }
  if (want.length) fail(path, `zip entry ${name}: sizes need a zip64 field, which is missing`);
  return out;
}

interface Directory {
  offset: number;
  size: number;
  count: number;
}

function findDirectory(fd: number, fileSize: number, path: string): Directory {
  if (fileSize < 22) fail(path, `too short to be a zip archive (${fileSize} bytes)`);
  const tailLen = Math.min(fileSize, 22 + MAX16);
  const tail = readAt(fd, fileSize - tailLen, tailLen, path);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) {
      at = i;
      break;
    }
  }
  if (at < 0) fail(path, 'no zip end-of-central-directory record: the file is truncated or not a zip archive');
  let count = tail.readUInt16LE(at + 10);
  let size = tail.readUInt32LE(at + 12);
  let offset = tail.readUInt32LE(at + 16);
  const eocdPos = fileSize - tailLen + at;
  if (count === MAX16 || size === MAX32 || offset === MAX32) {
    if (eocdPos < 20) fail(path, 'the zip64 end-of-central-directory locator is missing');
    const loc = readAt(fd, eocdPos - 20, 20, path);
    if (loc.readUInt32LE(0) !== EOCD64_LOCATOR) fail(path, 'the zip64 end-of-central-directory locator is missing');
    const recPos = big(loc.readBigUInt64LE(8), path, 'zip64 record offset');
    const rec = readAt(fd, recPos, 56, path);
    if (rec.readUInt32LE(0) !== EOCD64) fail(path, 'the zip64 end-of-central-directory record is damaged');
    count = big(rec.readBigUInt64LE(32), path, 'entry count');
    size = big(rec.readBigUInt64LE(40), path, 'directory size');
    offset = big(rec.readBigUInt64LE(48), path, 'directory offset');
  }
  if (count > MAX_ENTRIES) fail(path, `the zip directory claims ${count} entries`);
  if (offset + size > eocdPos) fail(path, 'the zip central directory lies outside the file: the file is truncated or damaged');
  return { offset, size, count };
}

/** Every entry of the archive, in directory order. Errors start with the path. */
export function readZipDirectory(path: string): ZipEntry[] {
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    const dir = findDirectory(fd, fileSize, path);
    const cd = readAt(fd, dir.offset, dir.size, path);
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < dir.count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) fail(path, `zip central directory entry ${i} is damaged`);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const dosTime = cd.readUInt16LE(p + 12);
      const dosDate = cd.readUInt16LE(p + 14);
      const crc = cd.readUInt32LE(p + 16);
      let compressedSize = cd.readUInt32LE(p + 20);
      let size = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localOffset = cd.readUInt32LE(p + 42);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length) fail(path, `zip central directory entry ${i} is damaged`);
      const name = cd.subarray(p + 46, p + 46 + nameLen).toString('utf8');
      const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
      const want: ('size' | 'compressed' | 'offset')[] = [];
      if (size === MAX32) want.push('size');
      if (compressedSize === MAX32) want.push('compressed');
      if (localOffset === MAX32) want.push('offset');
      const z = zip64Values(extra, want, path, name);
      size = z.get('size') ?? size;
      compressedSize = z.get('compressed') ?? compressedSize;
      localOffset = z.get('offset') ?? localOffset;
      p += 46 + nameLen + extraLen + commentLen;
      if (localOffset + 30 > fileSize) fail(path, `zip entry ${name} starts beyond the end of the file: the file is truncated`);
      const local = readAt(fd, localOffset, 30, path);
      if (local.readUInt32LE(0) !== LOCAL) fail(path, `zip entry ${name}: its local header is damaged`);
      const dataOffset = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if (dataOffset + compressedSize > fileSize) fail(path, `zip entry ${name} runs past the end of the file: the file is truncated`);
      entries.push({ name, method, flags, crc32: crc, compressedSize, size, dataOffset, dosTime, dosDate });
    }
    return entries;
  } finally {
    closeSync(fd);
  }
}

/** An entry's uncompressed bytes, checked against its size and CRC-32. */
export function readZipEntry(path: string, e: ZipEntry): Buffer {
  if (e.flags & 1) fail(path, `zip entry ${e.name} is encrypted`);
  if (e.method !== STORED && e.method !== DEFLATED) fail(path, `zip entry ${e.name} uses compression method ${e.method} (only stored and deflated are supported)`);
  const fd = openSync(path, 'r');
  let raw: Buffer;
  try {
    raw = readAt(fd, e.dataOffset, e.compressedSize, path);
  } finally {
    closeSync(fd);
  }
  let data: Buffer;
  try {
    data = e.method === STORED ? raw : inflateRawSync(raw, { maxOutputLength: Math.max(e.size, 1) });
  } catch (err) {
    fail(path, `zip entry ${e.name} cannot be decompressed (${(err as Error).message})`);
  }
  if (data.length !== e.size) fail(path, `zip entry ${e.name} holds ${data.length} bytes, its directory says ${e.size}`);
  if (crc32(data) >>> 0 !== e.crc32) fail(path, `zip entry ${e.name} fails its CRC-32 check: the file is damaged`);
  return data;
}

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

function localHeader(w: Written): Buffer {
  const zip64 = w.size >= MAX32 || w.compressedSize >= MAX32;
  const extra = zip64 ? Buffer.alloc(20) : Buffer.alloc(0);
  if (zip64) {
    extra.writeUInt16LE(0x0001, 0);
    extra.writeUInt16LE(16, 2);
    extra.writeBigUInt64LE(BigInt(w.size), 4);
    extra.writeBigUInt64LE(BigInt(w.compressedSize), 12);
  }
  const h = Buffer.alloc(30);
  h.writeUInt32LE(LOCAL, 0);
  h.writeUInt16LE(zip64 ? 45 : 20, 4);
  h.writeUInt16LE(w.utf8 ? 0x800 : 0, 6);
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
  const h = Buffer.alloc(46);
  h.writeUInt32LE(CENTRAL, 0);
  h.writeUInt16LE(vals.length ? 45 : 20, 4);
  h.writeUInt16LE(vals.length ? 45 : 20, 6);
  h.writeUInt16LE(w.utf8 ? 0x800 : 0, 8);
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

function endRecords(count: number, cdOffset: number, cdSize: number): Buffer {
  const parts: Buffer[] = [];
  const zip64 = count >= MAX16 || cdOffset >= MAX32 || cdSize >= MAX32;
  if (zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(EOCD64, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(count), 24);
    rec.writeBigUInt64LE(BigInt(count), 32);
    rec.writeBigUInt64LE(BigInt(cdSize), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(EOCD64_LOCATOR, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
    loc.writeUInt32LE(1, 16);
    parts.push(rec, loc);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(EOCD, 0);
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
    let done = 0;
    while (done < length) {
      const n = readSync(src, buf, 0, Math.min(buf.length, length - done), offset + done);
      if (n === 0) fail(from, `unexpected end of file while copying zip entry bytes at ${offset + done}`);
      writeAll(fd, buf.subarray(0, n), position + done);
      done += n;
    }
  } finally {
    closeSync(src);
  }
}

/** Writes a complete archive to an open file, from position 0. */
export function writeZip(fd: number, items: readonly ZipItem[]): void {
  const written: Written[] = [];
  let pos = 0;
  for (const item of items) {
    if ('copy' in item) {
      const e = item.copy;
      const w: Written = { name: Buffer.from(e.name, 'utf8'), method: e.method, crc: e.crc32, compressedSize: e.compressedSize, size: e.size, offset: pos, dosTime: e.dosTime, dosDate: e.dosDate, utf8: /[^\x00-\x7f]/.test(e.name) };
      const h = localHeader(w);
      writeAll(fd, h, pos);
      copyRange(item.from, e.dataOffset, e.compressedSize, fd, pos + h.length);
      pos += h.length + e.compressedSize;
      written.push(w);
      continue;
    }
    const body = item.method === DEFLATED ? deflateRawSync(item.data) : item.data;
    if (item.method !== STORED && item.method !== DEFLATED) throw new Error(`zip entry ${item.name}: cannot write compression method ${item.method}`);
    const w: Written = { name: Buffer.from(item.name, 'utf8'), method: item.method, crc: crc32(item.data) >>> 0, compressedSize: body.length, size: item.data.length, offset: pos, dosTime: item.dosTime, dosDate: item.dosDate, utf8: /[^\x00-\x7f]/.test(item.name) };
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

/** CRC-32 of a stored entry's bytes, read in chunks (stored entries can be gigabytes). */
function storedCrc(path: string, e: ZipEntry): number {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(e.size, 1)));
    let crc = 0;
    let done = 0;
    while (done < e.size) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, e.size - done), e.dataOffset + done);
      if (n === 0) fail(path, `zip entry ${e.name} is truncated`);
      crc = crc32(buf.subarray(0, n), crc);
      done += n;
    }
    return crc >>> 0;
  } finally {
    closeSync(fd);
  }
}

/** Checks a whole archive: every entry readable, sizes and CRC-32 right. */
export function verifyZip(path: string): ZipEntry[] {
  const entries = readZipDirectory(path);
  for (const e of entries) {
    if (e.method === STORED && !(e.flags & 1)) {
      if (e.size !== e.compressedSize) fail(path, `stored zip entry ${e.name} has two different sizes`);
      if (storedCrc(path, e) !== e.crc32) fail(path, `zip entry ${e.name} fails its CRC-32 check`);
    } else {
      readZipEntry(path, e);
    }
  }
  return entries;
}

export interface ZipFileOptions {
  /** Runs on the written temporary archive after its CRCs are checked; throw to abandon. */
  check?: (tmpPath: string, entries: ZipEntry[]) => void;
  /** When replacing an existing target, keep it as `<target>.bak`. */
  backup?: boolean;
}

/** A new archive written beside `target`, verified, then renamed into place. */
export function writeZipFile(target: string, items: readonly ZipItem[], opts: ZipFileOptions = {}): void {
  const tmp = temporaryPathFor(target);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      writeZip(fd, items);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const entries = verifyZip(tmp);
    opts.check?.(tmp, entries);
    if (opts.backup && existsSync(target)) copyFileSync(target, `${target}.bak`);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
