// CRC-32s of entries patched in place. An archive records each one in the central directory,
// in the data descriptor after the data when it has one, and in the local header unless the
// descriptor carries it; unzip and Python's zipfile reject a stale copy in any of them.
import { crc32 } from 'node:zlib';
import { writeAll } from '../core/safeWrite';
import type { ZipEntry } from './directory';
import { FLAG_DESCRIPTOR, SIG_DESCRIPTOR } from './format';
import { readAt, readFully } from './readAt';

const CHUNK = 8 * 1024 * 1024;

/** CRC-32 of a byte range, read in chunks through one buffer (entries may be gigabytes). */
export function crcOfRange(fd: number, start: number, length: number): number {
  const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(length, 1)));
  let crc = 0;
  for (let done = 0; done < length; ) {
    const n = Math.min(buf.length, length - done);
    crc = crc32(readFully(fd, buf.subarray(0, n), start + done), crc);
    done += n;
  }
  return crc >>> 0;
}

/**
 * Where the data descriptor after an entry keeps its CRC-32, if it has one. The descriptor's
 * signature is optional in the zip spec; without it the CRC comes first.
 */
function descriptorCrcOffset(fd: number, e: ZipEntry, fileSize: number): number | undefined {
  if (!(e.flags & FLAG_DESCRIPTOR)) return undefined;
  const at = e.dataStart + e.compressedSize;
  if (at + 8 > fileSize) return undefined;
  const head = readAt(fd, at, 8);
  if (head.readUInt32LE(0) === SIG_DESCRIPTOR) return at + 4;
  if (head.readUInt32LE(0) === e.crc >>> 0) return at;
  return undefined;
}

/** Every byte offset where the archive records this entry's CRC-32. */
function crcSites(fd: number, fileSize: number, e: ZipEntry): number[] {
  const sites = [e.centralHeaderOffset + 16];
  const descriptor = descriptorCrcOffset(fd, e, fileSize);
  if (e.flags & FLAG_DESCRIPTOR && descriptor === undefined) throw new Error(`zip entry ${e.name}: its data descriptor was not found`);
  if (descriptor !== undefined) sites.push(descriptor);
  if (e.localCrc !== 0 || !(e.flags & FLAG_DESCRIPTOR)) sites.push(e.localHeaderOffset + 14);
  return sites;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

/**
 * Recomputes the CRC-32 of entries whose bytes were patched and writes it everywhere it is
 * recorded. All sites are found before any is written: a descriptor without its signature is
 * recognised by the old CRC.
 */
export function rewriteCrcs(fd: number, fileSize: number, entries: readonly ZipEntry[]): void {
  const plan = entries.map((entry) => ({ entry, sites: crcSites(fd, fileSize, entry) }));
  for (const { entry, sites } of plan) {
    const crc = u32(crcOfRange(fd, entry.dataStart, entry.compressedSize));
    for (const at of sites) writeAll(fd, crc, at);
  }
}

/** Checks that every recorded CRC-32 of these entries matches their data. */
export function checkCrcs(fd: number, fileSize: number, entries: readonly ZipEntry[]): void {
  for (const entry of entries) {
    const crc = crcOfRange(fd, entry.dataStart, entry.compressedSize);
    for (const at of crcSites(fd, fileSize, entry)) {
      if (readAt(fd, at, 4).readUInt32LE(0) !== crc) throw new Error(`zip entry ${entry.name}: CRC-32 at byte ${at} does not match its data`);
    }
  }
}
