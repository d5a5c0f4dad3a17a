// An entry's bytes come into memory whole, so every caller states how much it will accept.
import { crc32, inflateRawSync } from 'node:zlib';
import type { ZipEntry } from './directory';
import { DEFLATED, STORED } from './format';
import { readAt } from './readAt';

/** An entry's uncompressed bytes, checked against its size and CRC-32. */
export function readEntry(fd: number, e: ZipEntry, maxBytes: number): Buffer {
  if (e.method !== STORED && e.method !== DEFLATED) throw new Error(`zip entry ${e.name} uses compression method ${e.method} (only stored and deflated are supported)`);
  if (e.size > maxBytes) throw new Error(`zip entry ${e.name} is ${e.size} bytes, more than the ${maxBytes} this reader loads into memory`);
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
