// Balanced copies by patching: copy the original byte for byte, overwrite only the changed
// tensors' bytes, let the format fix what depends on them (checksums), verify, rename.
import { closeSync, copyFileSync, fsyncSync, openSync } from 'node:fs';
import { replaceSafely, writeAll, type SafeWriteOptions } from './safeWrite';

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
      copyFileSync(source, tmp);
      const fd = openSync(tmp, 'r+');
      try {
        for (const p of patches) writeAll(fd, p.bytes, p.offset);
        opts.fixup?.(fd, tmp);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    },
    opts,
  );
}
