// Positional reads: archives can be many gigabytes, so nothing here reads a whole file or
// moves a file position that another reader of the same descriptor relies on.
import { readSync } from 'node:fs';

/** Fills `buf` from `position`; a short file is an error, not a short buffer. */
export function readFully(fd: number, buf: Buffer, position: number): Buffer {
  for (let done = 0; done < buf.length; ) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error(`unexpected end of file at byte ${position + done} (wanted ${buf.length} bytes at ${position})`);
    done += n;
  }
  return buf;
}

export function readAt(fd: number, position: number, length: number): Buffer {
  return readFully(fd, Buffer.allocUnsafe(length), position);
}
