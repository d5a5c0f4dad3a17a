// Writing a model file without ever leaving a half-written one: the content goes to a
// temporary file beside the target, is verified, then renamed into place.
import { closeSync, constants, copyFileSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { balancedFileName } from '../../contract/output';

/** `<name>.balanced.<ext>` beside the input (the name is the contract's: the client shows it too). */
export function defaultOutputPath(input: string, extension: string): string {
  return join(dirname(input), balancedFileName(basename(input), extension));
}

export interface SafeWriteOptions {
  /** Called with the temporary path; throw to abandon the write. */
  verify?: (tmpPath: string) => void;
  /** When replacing an existing file, keep it as `<target>.bak` first. */
  backup?: boolean;
}

export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${Date.now()}.tmp`);
}

export function writeAll(fd: number, bytes: Buffer, position: number | null = null): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position === null ? null : position + done);
}

/**
 * Keeps the file as `<file>.bak`. Never writes through a link: the copy goes to a fresh file
 * created exclusively, then is renamed over `.bak`, which replaces a link there instead of
 * following it onto whatever file it names.
 */
export function keepBackup(file: string): void {
  const bak = `${file}.bak`;
  const tmp = temporaryPathFor(bak);
  try {
    copyFileSync(file, tmp, constants.COPYFILE_EXCL);
    renameSync(tmp, bak);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Runs `fill` on a fresh temporary file beside the target, then verifies it and renames it
 * into place; on any error the temporary file is removed and the target is untouched.
 */
export function replaceSafely(target: string, fill: (tmpPath: string) => void, opts: SafeWriteOptions = {}): void {
  const tmp = temporaryPathFor(target);
  try {
    fill(tmp);
    opts.verify?.(tmp);
    if (opts.backup && existsSync(target)) keepBackup(target);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** `replaceSafely` for content written through a descriptor, flushed to disk before it is verified. */
export function replaceByWriting(target: string, write: (fd: number) => void, opts: SafeWriteOptions = {}): void {
  replaceSafely(
    target,
    (tmp) => {
      const fd = openSync(tmp, 'wx');
      try {
        write(fd);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    },
    opts,
  );
}

export function writeFileSafely(target: string, data: Buffer, opts: SafeWriteOptions = {}): void {
  replaceByWriting(target, (fd) => writeAll(fd, data), opts);
}
