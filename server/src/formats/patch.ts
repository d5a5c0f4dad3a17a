// Balanced copies by patching: copy the original byte for byte, overwrite only the changed
// tensors' bytes, let the format fix what depends on them (checksums), verify, rename.
import { closeSync, copyFileSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface Patch {
  offset: number;
  bytes: Buffer;
}

export interface PatchOptions {
  /** Runs on the open temporary file after the patches (e.g. rewrite CRC-32 fields). */
  fixup?: (fd: number, tmpPath: string) => void;
  /** Throw to abandon the write; the temporary file is removed and the target untouched. */
  verify?: (tmpPath: string) => void;
  /** When replacing an existing target, copy it to `<target>.bak` first. */
  backup?: boolean;
}

export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${Date.now()}.tmp`);
}

export function writeAll(fd: number, bytes: Buffer, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}

export function writePatchedCopy(source: string, target: string, patches: readonly Patch[], opts: PatchOptions = {}): void {
  const tmp = temporaryPathFor(target);
  try {
    copyFileSync(source, tmp);
    const fd = openSync(tmp, 'r+');
    try {
      for (const p of patches) writeAll(fd, p.bytes, p.offset);
      opts.fixup?.(fd, tmp);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    opts.verify?.(tmp);
    if (opts.backup && existsSync(target)) copyFileSync(target, `${target}.bak`);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
