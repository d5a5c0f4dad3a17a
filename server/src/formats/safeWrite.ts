// Writing a model file without ever leaving a half-written one: write a temporary file beside
// the target, verify it, then rename it into place.
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync, copyFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

/** `<name>.balanced.<ext>` beside the input. */
export function defaultOutputPath(input: string, extension: string): string {
  const ext = extname(input);
  const stem = basename(input, ext);
  return join(dirname(input), `${stem}.balanced.${ext ? ext.slice(1) : extension}`);
}

export interface SafeWriteOptions {
  /** Called with the temporary path; throw to abandon the write. */
  verify?: (tmpPath: string) => void;
  /** When replacing an existing file, keep it as `<target>.bak` first. */
  backup?: boolean;
}

export function writeFileSafely(target: string, data: Buffer, opts: SafeWriteOptions = {}): void {
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
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
