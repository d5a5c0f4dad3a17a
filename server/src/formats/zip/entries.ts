// An entry's bytes come into memory whole, so every caller states how much it will accept.
// Deflated entries are inflated at most to the size the directory declares (and the caller
// accepts), and an entry declaring far more than its compressed bytes could honestly hold is
// refused before any inflation: a decompression bomb costs nothing.
import { crc32, inflateRawSync } from 'node:zlib';
import type { ZipEntry } from './directory';
import { DEFLATED, STORED } from './format';
import { readAt } from './readAt';

/** Deflate tops out near 1032:1 on a run of one byte; real weights compress a few to one. */
export const MAX_INFLATE_RATIO = 1000;
/** Entries up to this size are never refused for their ratio (zero-filled tensors compress that well). */
export const RATIO_EXEMPT_BYTES = 16 * 1024 * 1024;

/** Refuses an entry whose declared size is beyond the caller's budget or its compression ratio. */
export function checkInflatedSize(e: ZipEntry, maxBytes: number): void {
  if (e.size > maxBytes) throw new Error(`zip entry ${e.name} is ${e.size} bytes, more than the ${maxBytes} this reader loads into memory`);
  if (e.method === DEFLATED && e.size > RATIO_EXEMPT_BYTES && e.size > e.compressedSize * MAX_INFLATE_RATIO) {
    throw new Error(`zip entry ${e.name} would inflate ${e.compressedSize} bytes to ${e.size} (more than ${MAX_INFLATE_RATIO}:1): a decompression bomb, not read`);
  }
}

/** An entry's uncompressed bytes, checked against its size and CRC-32. */
export function readEntry(fd: number, e: ZipEntry, maxBytes: number): Buffer {
  if (e.method !== STORED && e.method !== DEFLATED) throw new Error(`zip entry ${e.name} uses compression method ${e.method} (only stored and deflated are supported)`);
  checkInflatedSize(e, maxBytes);
  const raw = readAt(fd, e.dataStart, e.compressedSize);
  let data: Buffer;
  try {
    data = e.method === STORED ? raw : inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
  } catch (err) {
    throw new Error(`zip entry ${e.name} does not decompress (${(err as Error).message})`);
  }
  if (data.length !== e.size) throw new Error(`zip entry ${e.name} holds ${data.length} bytes, but the directory says ${e.size}`);
  if (crc32(data) >>> 0 !== e.crc >>> 0) throw new Error(`zip entry ${e.name} fails its CRC-32 check (the file is damaged)`);
  return data;
}
