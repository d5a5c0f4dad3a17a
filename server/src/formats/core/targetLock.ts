// One writer per file: a lock file `.NAME.synbal-lock` beside the target, created exclusively
// (O_EXCL), holding the writer's pid and when it started. A lock whose process is gone is stale
// and taken over; a live one refuses the second writer with a message naming the file and the
// other process (the CLI prints it, the language server's fix reports it).
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FileError } from '../../errors/fileError';
import { processAlive, writeAll } from './safeWrite';

export const LOCK_SUFFIX = '.synbal-lock';

export function lockPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}${LOCK_SUFFIX}`);
}

interface LockInfo {
  pid: number;
  started: string;
}

function readLock(path: string): { text: string; info?: LockInfo } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const doc = JSON.parse(text) as Partial<LockInfo>;
    if (typeof doc.pid === 'number') return { text, info: { pid: doc.pid, started: String(doc.started ?? '?') } };
  } catch {
    // A lock being written this instant, or a damaged one: judged below.
  }
  return { text };
}

/** The file is being written by another live process. */
export class TargetLocked extends FileError {
  constructor(target: string, readonly holder: LockInfo) {
    super(target, `another synbal process (pid ${holder.pid}, started ${holder.started}) is writing this file; nothing written — try again when it has finished (or remove ${basename(lockPathFor(target))} if that process is not synbal)`, 'refused');
    this.name = 'TargetLocked';
  }
}

/** Takes the lock of `target`, or throws `TargetLocked`; returns its release. */
export function lockTarget(target: string): () => void {
  const path = lockPathFor(target);
  const mine = JSON.stringify({ pid: process.pid, started: new Date(Date.now() - process.uptime() * 1000).toISOString(), host: process.platform }) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number | undefined;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new FileError(target, `cannot create the lock file ${basename(path)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'refused');
    }
    if (fd !== undefined) {
      try {
        writeAll(fd, Buffer.from(mine));
      } catch (e) {
        // An empty lock would hold up every later run until judged stale: leave none.
        closeSync(fd);
        rmSync(path, { force: true });
        throw e;
      }
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        // Only our own lock is removed (a stale-lock takeover by another process never happens
        // while we live, but be sure).
        if (readLock(path)?.text === mine) rmSync(path, { force: true });
      };
    }
    const held = readLock(path);
    if (held === undefined) continue; // released meanwhile
    if (held.info && processAlive(held.info.pid)) throw new TargetLocked(target, held.info);
    if (!held.info) {
      // Unreadable content: a lock being created this instant; give it a moment.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      const again = readLock(path);
      if (again?.text !== held.text) continue;
      if (again?.info === undefined && attempt < 3) continue;
    }
    takeOverStale(path, held.text);
  }
  throw new FileError(target, `cannot take the lock file ${basename(path)}: it keeps changing`, 'refused');
}

/**
 * Removes a stale lock: renamed aside first (only one process wins the rename), and put back
 * when what was renamed is not the stale lock that was judged (a live writer's fresh one).
 */
function takeOverStale(path: string, staleText: string): void {
  const aside = `${path}.${process.pid}.${Date.now()}.stale`;
  try {
    renameSync(path, aside);
  } catch {
    return;
  }
  let text: string | undefined;
  try {
    text = readFileSync(aside, 'utf8');
  } catch {
    text = undefined;
  }
  if (text !== staleText) {
    try {
      linkSync(aside, path);
    } catch {
      // Another lock is there now; the one renamed aside was replaced by its owner's retry.
    }
  }
  rmSync(aside, { force: true });
}
