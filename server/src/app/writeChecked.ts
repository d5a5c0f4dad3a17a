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
import { keepBackup } from '../formats/core/safeWrite';
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
}

export interface WriteCheckedOptions {
  /** Replacing existing files: keep each as `<file>.bak`. */
  backup: boolean;
  verify: VerifySpec;
  /** The activation setting the original was opened with (the copy is built the same way). */
  activation: string;
  /** Called before the (possibly long) check runs. */
  onChecking?: (message: string) => void;
}

const STAGING_MARK = '.synbal-staging-';

/** Whether a folder is one of the staging folders below (workspace scans pass them by). */
export function isStagingFolder(name: string): boolean {
  return name.startsWith('.') && name.includes(STAGING_MARK);
}

export async function writeChecked(opened: OpenedNetwork, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteCheckedOptions): Promise<CheckedWrite> {
  const { format, checkpoint } = opened;
  if (!opts.verify.enabled) return { written: format.write(checkpoint, changed, target, { backup: opts.backup }) };
  const staging = join(dirname(target), `.${basename(target)}${STAGING_MARK}${process.pid}-${Date.now()}`);
  mkdirSync(staging);
  try {
    const staged = join(staging, basename(target));
    const files = format.write(checkpoint, changed, staged, { placedIn: dirname(target) });
    const outside = files.find((f) => relative(staging, f).startsWith('..'));
    if (outside) throw new FileError(checkpoint.path, `the ${format.id} writer wrote ${outside} outside its staging folder`);
    opts.onChecking?.(format.verifyWritten ? `running both files (${format.id})` : 'reading the written file back');
    const { verification, skipped } = await checkCopy(opened, staged, opts.activation, opts.verify);
    refuseUnlessForced(checkpoint.path, verification, skipped, changed, opts.verify);
    return { written: moveInto(files, dirname(target), opts.backup), verification, skipped };
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
  const engine = engineCheck(opened.network, readBack(opened.format, opened.checkpoint.path, staged, activation), spec.inputShapes);
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

function engineCheck(a: Network, b: Network, inputShapes: VerifySpec['inputShapes']): { verification?: Verification; skipped?: string } {
  try {
    return { verification: { method: 'engine forward pass', ...compareFunctions(a, b, 1, 4, { inputShapes }) } };
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
    throw new FileError(path, `the balanced network's outputs differ by ${v.maxRelative.toExponential(2)} (relative) from the original, above ${limit.toPrecision(3)}${v.limitBasis ? ` (${v.limitBasis})` : ''}; nothing written (use --force to write anyway)`, 'refused');
  }
  // An inconclusive check counts as no check: where one is required, the copy is refused.
  if (v?.inconclusive && spec.requireCheck) {
    throw new FileError(path, `the check was inconclusive (${v.inconclusive}); nothing written (give --input-shape, or use --force to write it unverified)`, 'refused');
  }
  if (!v && spec.requireCheck) {
    throw new FileError(path, `cannot verify the balanced network (${skipped ?? 'no check available'}); use --force to write it unverified`, 'refused');
  }
}

/** Renames the staged files into `dir` (same file system), each replaced file kept as `.bak` when asked. */
function moveInto(files: readonly string[], dir: string, backup: boolean): string[] {
  return files.map((f) => {
    const dest = join(dir, basename(f));
    if (backup && existsSync(dest)) keepBackup(dest);
    renameSync(f, dest);
    return dest;
  });
}
