// The one verification policy every front end gets: a balanced copy is written into a staging
// folder beside the target, checked there against the original (by the format's own runtime
// where it has one, else the engine's forward pass over the weights read back), and only then
// moved into place. A refused copy leaves nothing behind and replaces nothing.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { compareFunctions, verifyLimit } from '../engine/verify';
import type { Network } from '../engine/network';
import { FileError } from '../errors/fileError';
import type { ModelFormat } from '../formats/core/format';
import { assertUnchangedSinceRead } from '../formats/core/checkpoint';
import { beforeCommit, guardCommits, keepBackup, removeStaleTemporaries, testPause } from '../formats/core/safeWrite';
import { lockTarget } from '../formats/core/targetLock';
import { networkOf } from '../formats/registry';
import type { Tensor } from '../tensor/tensor';
import type { OpenedNetwork } from './openNetwork';
import type { VerifySpec, Verification } from './requests';

export interface CheckedWrite {
  /** Every file written, the main one first, at their final places. */
  written: string[];
  verification?: Verification;
  /** Why the format's own check, or any check, could not run. */
  skipped?: string;
  /** Stopped before the commit: nothing was written. */
  cancelled?: boolean;
}

export interface WriteCheckedOptions {
  /** Replacing existing files: keep each as `<file>.bak`. */
  backup: boolean;
  verify: VerifySpec;
  /** The activation setting the original was opened with (the copy is built the same way). */
  activation: string;
  /** Called before the (possibly long) check runs. */
  onChecking?: (message: string) => void;
  /** Asked once the check is done: true leaves nothing behind and replaces nothing. */
  cancelled?: () => boolean;
}

const STAGING_MARK = '.synbal-staging-';

/** Whether a folder is one of the staging folders below (workspace scans pass them by). */
export function isStagingFolder(name: string): boolean {
  return name.startsWith('.') && name.includes(STAGING_MARK);
}

/**
 * Writes the balanced copy of `opened` to `target` under the one policy. Around it: the target's
 * lock (a second writer of the same file is refused, naming this process), the removal of what
 * killed runs left beside the target (stale staging folders and temporary files, files of a
 * multi-file set that no index names), and, right before every rename into place, the check
 * that the input still holds the bytes it was balanced from (never a blend of old and new).
 */
export async function writeChecked(opened: OpenedNetwork, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteCheckedOptions): Promise<CheckedWrite> {
  const release = lockTarget(target);
  try {
    testPause('locked');
    removeStaleTemporaries(target, STAGING_MARK);
    opened.format.tidy?.(target);
    const guard = () => assertUnchangedSinceRead(opened.checkpoint);
    guard();
    if (!opts.verify.enabled) return { written: guardCommits(guard, () => opened.format.write(opened.checkpoint, changed, target, { backup: opts.backup })) };
    return await writeStagedAndChecked(opened, changed, target, opts, guard);
  } finally {
    release();
  }
}

async function writeStagedAndChecked(opened: OpenedNetwork, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteCheckedOptions, guard: () => void): Promise<CheckedWrite> {
  const { format, checkpoint } = opened;
  const staging = join(dirname(target), `.${basename(target)}${STAGING_MARK}${process.pid}-${Date.now()}`);
  mkdirSync(staging);
  try {
    const staged = join(staging, basename(target));
    const files = format.write(checkpoint, changed, staged, { finalFolder: dirname(target) });
    const outside = files.find((f) => relative(staging, f).startsWith('..'));
    if (outside) throw new FileError(checkpoint.path, `the ${format.id} writer wrote ${outside} outside its staging folder`);
    opts.onChecking?.(format.verifyWritten ? `running both files (${format.id})` : 'reading the written file back');
    const { verification, skipped } = await checkCopy(opened, staged, opts.activation, opts.verify);
    refuseUnlessForced(checkpoint.path, verification, skipped, changed, opts.verify);
    // Stopped while the copy was checked: it is still staged, so stopping costs nothing.
    if (opts.cancelled?.()) return { written: [], verification, skipped, cancelled: true };
    const former = format.filesOf?.(target);
    const written = guardCommits(guard, () => moveInto(files, dirname(target), opts.backup));
    format.tidy?.(target, former);
    return { written, verification, skipped };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Whether the format's own runtime will check the copy (then the original network is not needed). */
export function ownCheckRuns(format: ModelFormat): boolean {
  return format.verifyWritten !== undefined && format.verifyWritten.unavailable() === undefined;
}

async function checkCopy(opened: OpenedNetwork, staged: string, activation: string, spec: VerifySpec): Promise<{ verification?: Verification; skipped?: string }> {
  const own = opened.format.verifyWritten;
  const unavailable = own?.unavailable();
  if (own && unavailable === undefined) return { verification: await own.run(opened.checkpoint.path, staged, { inputShapes: spec.inputShapes }) };
  const engine = engineCheck(opened.network, () => readBack(opened.format, opened.checkpoint.path, staged, activation));
  if (!own) return engine;
  // The format's runtime is missing here: the engine's check stands in, and the outcome says so.
  const skipped = `${unavailable}: checked with the engine's forward pass instead${engine.skipped ? ` (which could not run either: ${engine.skipped})` : ''}`;
  return { verification: engine.verification, skipped };
}

/**
 * The network of the written copy, built with the original's context (its manifest, the
 * activation setting) so that the two differ only in the bytes that were written.
 */
function readBack(format: ModelFormat, originalPath: string, staged: string, activation: string): Network {
  const cp = format.open(staged);
  return networkOf({ ...cp, path: originalPath }, { defaultActivation: activation || undefined }).network;
}

// The engine's networks carry the sizes their builders fixed: --input-shape applies to ONNX only.
function engineCheck(a: Network, copy: () => Network): { verification?: Verification; skipped?: string } {
  let b: Network;
  try {
    b = copy();
  } catch (e) {
    // The staged copy is gone with its folder: say what failed, not where it was staged.
    return { skipped: `the written copy could not be read back (${e instanceof FileError ? e.problem : (e as Error).message})` };
  }
  try {
    return { verification: { method: 'engine forward pass', ...compareFunctions(a, b) } };
  } catch (e) {
    // An operator the engine has no forward pass for: nothing could be checked.
    return { skipped: (e as Error).message };
  }
}

function refuseUnlessForced(path: string, v: Verification | undefined, skipped: string | undefined, changed: ReadonlyMap<string, Tensor>, spec: VerifySpec): void {
  if (spec.force) return;
  // The check's own limit where it set one (half precision: the original's sensitivity), else the dtype's.
  const limit = v?.limit ?? verifyLimit(changed.values());
  if (v && v.maxRelative > limit) {
    throw new FileError(path, `the balanced network's outputs differ by ${v.maxRelative.toExponential(2)} (relative) from the original, above ${limit.toPrecision(3)}${v.limitBasis ? ` (${v.limitBasis})` : ''}; nothing written`, 'refused');
  }
  // An inconclusive check counts as no check: where one is required, the copy is refused.
  if (v?.inconclusive && spec.requireCheck) {
    throw new FileError(path, `the check was inconclusive (${v.inconclusive}); nothing written (give the input sizes it should run at)`, 'refused');
  }
  if (!v && spec.requireCheck) {
    throw new FileError(path, `cannot verify the balanced network (${skipped ?? 'no check available'}); nothing written`, 'refused');
  }
}

/**
 * Renames the staged files into `dir` (same file system), each replaced file kept as `.bak` when
 * asked. The main file (the first) goes last: for a set committed by its index, that rename is
 * the commit point, and the files it names are all in place before it.
 */
function moveInto(files: readonly string[], dir: string, backup: boolean): string[] {
  const order = [...files.slice(1), ...files.slice(0, 1)];
  // Files moved under fresh names (new shards) are named by nothing until the main file lands:
  // a commit refused on the way (the input changed meanwhile) takes them back out.
  const fresh: string[] = [];
  try {
    for (const f of order) {
      const dest = join(dir, basename(f));
      if (f === files[0]) testPause('before-commit');
      const replacing = existsSync(dest);
      if (backup && replacing) keepBackup(dest);
      // A file under a fresh name is no commit yet (a new shard); the main file, or one replaced, is.
      if (f === files[0] || replacing) beforeCommit();
      renameSync(f, dest);
      if (!replacing && f !== files[0]) fresh.push(dest);
    }
  } catch (e) {
    for (const d of fresh) rmSync(d, { force: true });
    throw e;
  }
  return files.map((f) => join(dir, basename(f)));
}
