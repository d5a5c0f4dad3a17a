// Entry points by path, for readers that do not keep the archive open: each opens the file,
// does its work through the descriptor-based functions, and names the file in any error.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { constants } from 'node:buffer';
import { crcOfRange } from './crc';
import { readZipDirectory, type ZipDirectory, type ZipEntry } from './directory';
import { readEntry } from './entries';
import { STORED } from './format';
import { asFileError } from '../../errors/fileError';

function withFile<T>(path: string, body: (fd: number, size: number) => T): T {
  try {
    const fd = openSync(path, 'r');
    try {
      return body(fd, fstatSync(fd).size);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw asFileError(path, e);
  }
}

export function readZipFileDirectory(path: string): ZipDirectory {
  return withFile(path, (fd, size) => readZipDirectory(fd, size));
}

/** An entry's uncompressed bytes, checked against its size and CRC-32. */
export function readZipEntry(path: string, e: ZipEntry, maxBytes: number = constants.MAX_LENGTH): Buffer {
  return withFile(path, (fd) => readEntry(fd, e, maxBytes));
}

/** Checks a whole archive: every entry readable, sizes and CRC-32 right; stored entries are never loaded whole. */
export function verifyZip(path: string): ZipDirectory {
  return withFile(path, (fd, size) => {
    const dir = readZipDirectory(fd, size);
    for (const e of dir.entries) {
      if (e.method !== STORED) {
        readEntry(fd, e, constants.MAX_LENGTH);
        continue;
      }
      if (e.size !== e.compressedSize) throw new Error(`stored zip entry ${e.name} has two different sizes`);
      if (crcOfRange(fd, e.dataStart, e.size) !== e.crc >>> 0) throw new Error(`zip entry ${e.name} fails its CRC-32 check (the file is damaged)`);
    }
    return dir;
  });
}
