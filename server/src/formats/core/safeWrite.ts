// Writing a model file without ever leaving a half-written one: the content goes to a
// temporary file beside the target, is verified, then renamed into place.
import { closeSync, constants, copyFileSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { balancedFileName } from '../../contract/output';
import { ChangedWhileReading } from '../../errors/fileError';

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

/** `.NAME.PID.TIME.tmp` beside the target: a later write recognises it, and removes it once PID is gone. */
export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${Date.now()}.tmp`);
}

/** Whether a process with this id is running (EPERM: it is, under another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Removes what killed runs left beside `target`: temporary files `.NAME.PID.TIME.tmp` (of the
 * target and of its `.bak`) and, with `stagingMark`, staging folders `.NAME<mark>PID-TIME`,
 * whose process is gone. Anything else, and anything of a live process, is left alone.
 * Returns the names removed.
 */
export function removeStaleTemporaries(target: string, stagingMark?: string): string[] {
  const dir = dirname(target);
  const name = escapeRe(basename(target));
  const patterns = [new RegExp(`^\\.${name}(?:\\.bak)?\\.(\\d+)\\.\\d+\\.tmp$`)];
  if (stagingMark) patterns.push(new RegExp(`^\\.${name}${escapeRe(stagingMark)}(\\d+)-\\d+$`));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const pid = patterns.map((re) => re.exec(n)).find((m) => m)?.[1];
    if (pid === undefined || processAlive(Number(pid))) continue;
    try {
      rmSync(join(dir, n), { recursive: true, force: true });
      removed.push(n);
    } catch {
      // Not ours to fight over (permissions): the next run tries again.
    }
  }
  return removed;
}

// ---- the commit point ----------------------------------------------------------------------
// A writer that replaces files (this module's `replaceSafely`, writeChecked's move out of its
// staging folder) calls `beforeCommit()` right before each rename into place and before a `.bak`
// is taken. What runs there is pushed by whoever knows what was read: writeChecked checks that
// the input still has the bytes it was balanced from (checkpoint.ts `assertUnchangedSinceRead`).

const commitGuards: (() => void)[] = [];

/** Runs `fn` with `guard` called before every commit in it (nested guards all run). */
export function guardCommits<T>(guard: () => void, fn: () => T): T {
  commitGuards.push(guard);
  try {
    return fn();
  } finally {
    commitGuards.splice(commitGuards.lastIndexOf(guard), 1);
  }
}

let suspended = 0;

/**
 * Runs `fn`, whose renames are no commit (files written under fresh names that nothing names
 * yet, such as a sharded set's new shards before its index): the guards wait for the real one.
 */
export function notACommit<T>(fn: () => T): T {
  suspended++;
  try {
    return fn();
  } finally {
    suspended--;
  }
}

export function beforeCommit(): void {
  if (suspended > 0) return;
  for (const g of commitGuards) g();
}

/**
 * A test-only hook (documented in server/src/formats/README.md): when the environment variable
 * `SYNBAL_TEST_PAUSE` names this point, the process writes `synbal-paused <point>` to stderr and
 * waits (up to 60 s) so a test can kill it there (SIGKILL) or change files under it.
 */
export function testPause(point: string): void {
  if (process.env.SYNBAL_TEST_PAUSE !== point) return;
  writeSync(2, `synbal-paused ${point}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.env.SYNBAL_TEST_PAUSE_MS ?? 60_000));
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
    const before = statSync(file);
    copyFileSync(file, tmp, constants.COPYFILE_EXCL);
    // A file written to while it was copied would leave a partial .bak: the copy is dropped.
    const after = statSync(file);
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || statSync(tmp).size !== before.size) {
      throw new ChangedWhileReading(file, 'the file changed while its backup was being taken; nothing written');
    }
    beforeCommit();
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
  removeStaleTemporaries(target);
  const tmp = temporaryPathFor(target);
  try {
    fill(tmp);
    opts.verify?.(tmp);
    if (opts.backup && existsSync(target)) keepBackup(target);
    beforeCommit();
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
