// Balanced copies by patching: copy the original byte for byte, overwrite only the changed
// tensors' bytes, let the format fix what depends on them (checksums), verify, rename.
import { closeSync, constants, copyFileSync, fstatSync, fsyncSync, openSync, readSync } from 'node:fs';
import { replaceSafely, writeAll, type SafeWriteOptions } from './safeWrite';
import { FileError } from '../../errors/fileError';

export { temporaryPathFor, writeAll } from './safeWrite';

export interface Patch {
  offset: number;
  bytes: Buffer;
}

export interface PatchOptions extends SafeWriteOptions {
  /** Runs on the open temporary file after the patches (e.g. rewrite CRC-32 fields). */
  fixup?: (fd: number, tmpPath: string) => void;
}

export function writePatchedCopy(source: string, target: string, patches: readonly Patch[], opts: PatchOptions = {}): void {
  replaceSafely(
    target,
    (tmp) => {
      const sorted = [...patches].sort((a, b) => a.offset - b.offset);
      const disjoint = sorted.every((q, i) => i === 0 || sorted[i - 1].offset + sorted[i - 1].bytes.length <= q.offset);
      let fd: number;
      if (disjoint) {
        // One pass: the original's bytes between patches, then each patch — every byte of the
        // copy written once (a copy overwritten by the patches would write the weights twice).
        fd = openSync(tmp, 'wx+');
        streamWithPatches(source, fd, sorted);
      } else {
        copyFileSync(source, tmp, constants.COPYFILE_EXCL);
        fd = openSync(tmp, 'r+');
        for (const q of patches) writeAll(fd, q.bytes, q.offset);
      }
      try {
        opts.fixup?.(fd, tmp);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    },
    opts,
  );
}

const CHUNK = 1 << 24;

function streamWithPatches(source: string, out: number, sorted: readonly Patch[]): void {
  const inp = openSync(source, 'r');
  try {
    const size = fstatSync(inp).size;
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(size, 1)));
    let pos = 0;
    const copyUpTo = (end: number) => {
      while (pos < end) {
        const n = readSync(inp, buf, 0, Math.min(buf.length, end - pos), pos);
        if (n === 0) throw new FileError(source, `unexpected end of file at byte ${pos}`);
        writeAll(out, buf.subarray(0, n), pos);
        pos += n;
      }
    };
    for (const q of sorted) {
      if (q.offset + q.bytes.length > size) throw new FileError(source, `a patch at byte ${q.offset} runs past the end of the file`);
      copyUpTo(q.offset);
      writeAll(out, q.bytes, q.offset);
      pos = q.offset + q.bytes.length;
    }
    copyUpTo(size);
  } finally {
    closeSync(inp);
  }
}
