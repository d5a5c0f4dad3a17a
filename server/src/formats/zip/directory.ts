// The central directory is the only index trusted: PyTorch writes entries with data
// descriptors (local header CRC and sizes are 0), so sizes come from the directory and only
// the data start from the local header. Everything is read with a few positional reads, so
// a multi-gigabyte archive costs about as much to list as a small one.
import {
  CENTRAL_HEADER_SIZE, EOCD64_SIZE, EOCD_SIZE, FLAG_ENCRYPTED, LOCAL_HEADER_SIZE, LOCATOR64_SIZE,
  MAX16, MAX32, SIG_CENTRAL, SIG_EOCD, SIG_EOCD64, SIG_LOCAL, SIG_LOCATOR64,
} from './format';
import { readAt } from './readAt';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated; others are listed but cannot be read. */
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
  dosTime: number;
  dosDate: number;
}

export interface ZipDirectory {
  entries: ZipEntry[];
  byName: Map<string, ZipEntry>;
  centralStart: number;
  centralEnd: number;
  zip64: boolean;
}

/** About ten million entries; real archives have one per storage or array. */
const MAX_CENTRAL_DIRECTORY = 1024 * 1024 * 1024;

function u64(buf: Buffer, at: number, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`zip ${what} ${v} is too large`);
  return Number(v);
}

function findEndOfCentralDirectory(fd: number, size: number): { at: number; record: Buffer } {
  if (size < EOCD_SIZE) throw new Error(`too short for a zip archive (${size} bytes)`);
  const tailLength = Math.min(size, EOCD_SIZE + MAX16);
  const tail = readAt(fd, size - tailLength, tailLength);
  for (let i = tailLength - EOCD_SIZE; i >= 0; i--) {
    if (tail.readUInt32LE(i) !== SIG_EOCD) continue;
    // A comment that does not end at the end of the file means a stray signature.
    if (i + EOCD_SIZE + tail.readUInt16LE(i + 20) > tailLength) continue;
    return { at: size - tailLength + i, record: tail.subarray(i, i + EOCD_SIZE) };
  }
  throw new Error('not a complete zip archive: no end-of-central-directory record (the file may be truncated)');
}

interface Totals {
  count: number;
  cdSize: number;
  cdOffset: number;
  zip64: boolean;
}

/**
 * A zip64 locator, when present, wins even if the classic record is not saturated: PyTorch
 * always writes zip64 end records, and Python's zipfile reads them the same way.
 */
function readTotals(fd: number, eocdAt: number, eocd: Buffer): Totals {
  if (eocd.readUInt16LE(4) !== 0 || eocd.readUInt16LE(6) !== 0) throw new Error('multi-disk zip archives are not supported');
  const locatorAt = eocdAt - LOCATOR64_SIZE;
  if (locatorAt >= 0) {
    const locator = readAt(fd, locatorAt, LOCATOR64_SIZE);
    if (locator.readUInt32LE(0) === SIG_LOCATOR64) {
      const recordAt = u64(locator, 8, 'zip64 record offset');
      if (recordAt + EOCD64_SIZE > locatorAt) throw new Error(`the zip64 end record offset ${recordAt} points outside the file`);
      const rec = readAt(fd, recordAt, EOCD64_SIZE);
      if (rec.readUInt32LE(0) !== SIG_EOCD64) throw new Error(`no zip64 end record at offset ${recordAt}`);
      return { count: u64(rec, 32, 'entry count'), cdSize: u64(rec, 40, 'central directory size'), cdOffset: u64(rec, 48, 'central directory offset'), zip64: true };
    }
  }
  const count = eocd.readUInt16LE(10);
  const cdSize = eocd.readUInt32LE(12);
  const cdOffset = eocd.readUInt32LE(16);
  if (count === MAX16 || cdSize === MAX32 || cdOffset === MAX32) throw new Error('the zip archive needs zip64 records, which are missing');
  return { count, cdSize, cdOffset, zip64: false };
}

/** Reads the zip64 extended-information extra field: only the fields saturated in the header. */
function applyZip64(extra: Buffer, e: { size: number; compressedSize: number; localHeaderOffset: number }, name: string): boolean {
  const needSize = e.size === MAX32;
  const needCompressed = e.compressedSize === MAX32;
  const needOffset = e.localHeaderOffset === MAX32;
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

/** Every entry of the archive open as `fd`, in directory order. Errors do not name the file; callers add it. */
export function readZipDirectory(fd: number, size: number): ZipDirectory {
  const { at: eocdAt, record } = findEndOfCentralDirectory(fd, size);
  const totals = readTotals(fd, eocdAt, record);
  const { cdOffset, cdSize, count } = totals;
  if (cdOffset + cdSize > eocdAt) throw new Error(`the zip central directory (offset ${cdOffset}, ${cdSize} bytes) lies outside the file (${size} bytes)`);
  if (cdSize > MAX_CENTRAL_DIRECTORY) throw new Error(`the zip central directory claims ${cdSize} bytes, more than this reader accepts (${MAX_CENTRAL_DIRECTORY})`);
  if (count > cdSize / CENTRAL_HEADER_SIZE) throw new Error(`the zip central directory claims ${count} entries in ${cdSize} bytes`);
  const cd = readAt(fd, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + CENTRAL_HEADER_SIZE > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw new Error(`zip central directory entry ${i} is damaged (at offset ${cdOffset + p})`);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const nameAt = p + CENTRAL_HEADER_SIZE;
    if (nameAt + nameLen + extraLen + commentLen > cd.length) throw new Error(`zip central directory entry ${i} runs past the directory`);
    const name = cd.toString('utf8', nameAt, nameAt + nameLen);
    const sizes = { size: cd.readUInt32LE(p + 24), compressedSize: cd.readUInt32LE(p + 20), localHeaderOffset: cd.readUInt32LE(p + 42) };
    const zip64 = applyZip64(cd.subarray(nameAt + nameLen, nameAt + nameLen + extraLen), sizes, name);
    const entry: ZipEntry = {
      name,
      flags: cd.readUInt16LE(p + 8),
      method: cd.readUInt16LE(p + 10),
      dosTime: cd.readUInt16LE(p + 12),
      dosDate: cd.readUInt16LE(p + 14),
      crc: cd.readUInt32LE(p + 16),
      ...sizes,
      centralHeaderOffset: cdOffset + p,
      dataStart: 0,
      localCrc: 0,
      zip64,
    };
    // Refused here rather than on read, since stored entries are also read by offset alone.
    if (entry.flags & FLAG_ENCRYPTED) throw new Error(`zip entry ${name} is encrypted`);
    // Readers look entries up by name and writers patch them by name: two would be ambiguous.
    if (byName.has(name)) throw new Error(`the zip archive has two entries named ${name}`);
    locate(fd, entry, cdOffset);
    entries.push(entry);
    byName.set(name, entry);
    p = nameAt + nameLen + extraLen + commentLen;
  }
  return { entries, byName, centralStart: cdOffset, centralEnd: cdOffset + cdSize, zip64: totals.zip64 };
}

/** Finds where an entry's data starts, checking its local header against the directory. */
function locate(fd: number, e: ZipEntry, dataLimit: number): void {
  if (e.localHeaderOffset + LOCAL_HEADER_SIZE > dataLimit) throw new Error(`zip entry ${e.name}: its local header offset ${e.localHeaderOffset} points outside the file's data area`);
  const h = readAt(fd, e.localHeaderOffset, LOCAL_HEADER_SIZE);
  if (h.readUInt32LE(0) !== SIG_LOCAL) throw new Error(`zip entry ${e.name}: no local header at offset ${e.localHeaderOffset}`);
  const nameLen = h.readUInt16LE(26);
  const extraLen = h.readUInt16LE(28);
  e.localCrc = h.readUInt32LE(14);
  e.dataStart = e.localHeaderOffset + LOCAL_HEADER_SIZE + nameLen + extraLen;
  if (e.dataStart + e.compressedSize > dataLimit) {
    throw new Error(`zip entry ${e.name}: its data (${e.compressedSize} bytes at offset ${e.dataStart}) runs past the file's data area (ends at ${dataLimit})`);
  }
  const localName = readAt(fd, e.localHeaderOffset + LOCAL_HEADER_SIZE, nameLen).toString('utf8');
  if (localName !== e.name) throw new Error(`zip entry ${e.name}: its local header names ${JSON.stringify(localName)}`);
}
