// A zip reader that trusts only the central directory and reads with positional I/O, so a
// multi-gigabyte checkpoint costs a few small reads. PyTorch writes entries STORED with
// data descriptors (local header CRC and sizes are 0), so sizes come from the central
// directory and the data start from the local header's name and extra lengths.
import { readSync } from 'node:fs';
import { crc32, inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  /** Where this entry's central directory header starts. */
  centralHeaderOffset: number;
  /** First byte of the entry's (stored or compressed) data. */
  dataStart: number;
  /** The CRC-32 field of the local header (0 when a data descriptor carries it). */
  localCrc: number;
  /** Whether the entry's sizes needed zip64 extra fields. */
  zip64: boolean;
}

export interface ZipDirectory {
  entries: ZipEntry[];
  byName: Map<string, ZipEntry>;
  centralStart: number;
  centralEnd: number;
  zip64: boolean;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
export const SIG_DESCRIPTOR = 0x08074b50;
const FLAG_ENCRYPTED = 0x1;
/** About ten million entries; real checkpoints have one per storage. */
const MAX_CENTRAL_DIRECTORY = 1024 * 1024 * 1024;
export const FLAG_DESCRIPTOR = 0x8;

export function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
    done += n;
  }
  return buf;
}

function u64(buf: Buffer, at: number, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`zip ${what} ${v} is too large`);
  return Number(v);
}

function findEndOfCentralDirectory(fd: number, size: number): { at: number; record: Buffer } {
  if (size < 22) throw new Error(`too short for a zip archive (${size} bytes)`);
  const tailLength = Math.min(size, 22 + 0xffff);
  const tail = readAt(fd, size - tailLength, tailLength);
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) !== SIG_EOCD) continue;
    // A comment that does not end at the end of the file means a stray signature.
    if (i + 22 + tail.readUInt16LE(i + 20) > tailLength) continue;
    return { at: size - tailLength + i, record: tail.subarray(i, i + 22) };
  }
  throw new Error('not a complete zip archive: no end-of-central-directory record (the file may be truncated)');
}

interface Totals {
  count: number;
  cdSize: number;
  cdOffset: number;
  zip64: boolean;
}

function readTotals(fd: number, size: number, eocdAt: number, eocd: Buffer): Totals {
  if (eocd.readUInt16LE(4) !== 0 || eocd.readUInt16LE(6) !== 0) throw new Error('multi-disk zip archives are not supported');
  let count = eocd.readUInt16LE(10);
  let cdSize = eocd.readUInt32LE(12);
  let cdOffset = eocd.readUInt32LE(16);
  const locatorAt = eocdAt - 20;
  if (locatorAt >= 0) {
    const locator = readAt(fd, locatorAt, 20);
    if (locator.readUInt32LE(0) === SIG_LOCATOR64) {
      const recordAt = u64(locator, 8, 'zip64 record offset');
      if (recordAt + 56 > locatorAt) throw new Error(`the zip64 end record offset ${recordAt} points outside the file`);
      const rec = readAt(fd, recordAt, 56);
      if (rec.readUInt32LE(0) !== SIG_EOCD64) throw new Error(`no zip64 end record at offset ${recordAt}`);
      count = u64(rec, 32, 'entry count');
      cdSize = u64(rec, 40, 'central directory size');
      cdOffset = u64(rec, 48, 'central directory offset');
      return { count, cdSize, cdOffset, zip64: true };
    }
  }
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) throw new Error('the zip archive needs zip64 records, which are missing');
  if (cdOffset + cdSize > size) throw new Error(`the zip central directory (offset ${cdOffset}, ${cdSize} bytes) lies outside the file (${size} bytes)`);
  return { count, cdSize, cdOffset, zip64: false };
}

/** Reads the zip64 extended-information extra field: only the fields saturated in the header. */
function applyZip64(extra: Buffer, e: { size: number; compressedSize: number; localHeaderOffset: number }, name: string): boolean {
  const needSize = e.size === 0xffffffff;
  const needCompressed = e.compressedSize === 0xffffffff;
  const needOffset = e.localHeaderOffset === 0xffffffff;
  if (!needSize && !needCompressed && !needOffset) return false;
  for (let p = 0; p + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    if (p + 4 + len > extra.length) break;
    if (id === 0x0001) {
      let q = p + 4;
      const next = (what: string): number => {
        if (q + 8 > p + 4 + len) throw new Error(`zip entry ${name}: its zip64 field lacks the ${what}`);
        const v = u64(extra, q, what);
        q += 8;
        return v;
      };
      if (needSize) e.size = next('size');
      if (needCompressed) e.compressedSize = next('compressed size');
      if (needOffset) e.localHeaderOffset = next('local header offset');
      return true;
    }
    p += 4 + len;
  }
  throw new Error(`zip entry ${name}: sizes need a zip64 field, which is missing`);
}

export function readZipDirectory(fd: number, size: number): ZipDirectory {
  const { at: eocdAt, record } = findEndOfCentralDirectory(fd, size);
  const totals = readTotals(fd, size, eocdAt, record);
  const { cdOffset, cdSize, count } = totals;
  if (cdOffset + cdSize > eocdAt) throw new Error(`the zip central directory (offset ${cdOffset}, ${cdSize} bytes) lies outside the file (${size} bytes)`);
  if (cdSize > MAX_CENTRAL_DIRECTORY) throw new Error(`the zip central directory claims ${cdSize} bytes, more than this reader accepts (${MAX_CENTRAL_DIRECTORY})`);
  if (count > cdSize / 46) throw new Error(`the zip central directory claims ${count} entries in ${cdSize} bytes`);
  const cd = readAt(fd, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw new Error(`zip central directory entry ${i} is damaged (at offset ${cdOffset + p})`);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw new Error(`zip central directory entry ${i} runs past the directory`);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    const sizes = { size: cd.readUInt32LE(p + 24), compressedSize: cd.readUInt32LE(p + 20), localHeaderOffset: cd.readUInt32LE(p + 42) };
    const zip64 = applyZip64(cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen), sizes, name);
    const entry: ZipEntry = {
      name,
      flags: cd.readUInt16LE(p + 8),
      method: cd.readUInt16LE(p + 10),
      crc: cd.readUInt32LE(p + 16),
      ...sizes,
      centralHeaderOffset: cdOffset + p,
      dataStart: 0,
      localCrc: 0,
      zip64,
    };
    if (entry.flags & FLAG_ENCRYPTED) throw new Error(`zip entry ${name} is encrypted`);
    if (byName.has(name)) throw new Error(`the zip archive has two entries named ${name}`);
    locate(fd, entry, cdOffset);
    entries.push(entry);
    byName.set(name, entry);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { entries, byName, centralStart: cdOffset, centralEnd: cdOffset + cdSize, zip64: totals.zip64 };
}

/** Finds where an entry's data starts, checking its local header against the directory. */
function locate(fd: number, e: ZipEntry, dataLimit: number): void {
  if (e.localHeaderOffset + 30 > dataLimit) throw new Error(`zip entry ${e.name}: its local header offset ${e.localHeaderOffset} points outside the file's data area`);
  const h = readAt(fd, e.localHeaderOffset, 30);
  if (h.readUInt32LE(0) !== SIG_LOCAL) throw new Error(`zip entry ${e.name}: no local header at offset ${e.localHeaderOffset}`);
  const nameLen = h.readUInt16LE(26);
  const extraLen = h.readUInt16LE(28);
  e.localCrc = h.readUInt32LE(14);
  e.dataStart = e.localHeaderOffset + 30 + nameLen + extraLen;
  if (e.dataStart + e.compressedSize > dataLimit) {
    throw new Error(`zip entry ${e.name}: its data (${e.compressedSize} bytes at offset ${e.dataStart}) runs past the file's data area (ends at ${dataLimit})`);
  }
  const localName = readAt(fd, e.localHeaderOffset + 30, nameLen).toString('utf8');
  if (localName !== e.name) throw new Error(`zip entry ${e.name}: its local header names ${JSON.stringify(localName)}`);
}

/** CRC-32 of a byte range, read in chunks (entries may be gigabytes). */
export function crcOfRange(fd: number, start: number, length: number): number {
  const chunk = 8 * 1024 * 1024;
  let crc = 0;
  for (let done = 0; done < length; ) {
    const n = Math.min(chunk, length - done);
    crc = crc32(readAt(fd, start + done, n), crc);
    done += n;
  }
  return crc;
}

/** An entry's uncompressed bytes, checked against its CRC-32. */
export function readEntry(fd: number, e: ZipEntry, maxBytes: number): Buffer {
  if (e.size > maxBytes) throw new Error(`zip entry ${e.name} is ${e.size} bytes, more than the ${maxBytes} this reader loads into memory`);
  const raw = readAt(fd, e.dataStart, e.compressedSize);
  let data: Buffer;
  if (e.method === 0) data = raw;
  else if (e.method === 8) {
    try {
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
    } catch (err) {
      throw new Error(`zip entry ${e.name} does not decompress (${(err as Error).message})`);
    }
  } else throw new Error(`zip entry ${e.name} uses compression method ${e.method}, which is not supported`);
  if (data.length !== e.size) throw new Error(`zip entry ${e.name} holds ${data.length} bytes, but the directory says ${e.size}`);
  if (crc32(data) >>> 0 !== e.crc >>> 0) throw new Error(`zip entry ${e.name} fails its CRC-32 check (the file is damaged)`);
  return data;
}

/**
 * Where the data descriptor after an entry keeps its CRC-32, if it has one. The descriptor's
 * signature is optional in the zip spec; without it the CRC comes first.
 */
export function descriptorCrcOffset(fd: number, e: ZipEntry, fileSize: number): number | undefined {
  if (!(e.flags & FLAG_DESCRIPTOR)) return undefined;
  const at = e.dataStart + e.compressedSize;
  if (at + 8 > fileSize) return undefined;
  const head = readAt(fd, at, 8);
  if (head.readUInt32LE(0) === SIG_DESCRIPTOR) return at + 4;
  if (head.readUInt32LE(0) === e.crc >>> 0) return at;
  return undefined;
}
