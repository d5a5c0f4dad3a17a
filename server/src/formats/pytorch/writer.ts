// Balanced copies of PyTorch checkpoints: patch the changed tensors' bytes in a copy; in a
// zip, also rewrite the CRC-32 of every touched entry wherever the archive records it
// (central directory, data descriptor, and the local header when it carries one), since
// unzip and Python's zipfile reject stale CRCs; then re-read the copy before renaming it.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { assertUnchanged, readRange, type Checkpoint } from '../core/checkpoint';
import { writePatchedCopy } from '../core/patch';
import type { WriteOptions } from '../core/format';
import { SIG_LOCAL, checkCrcs, readZipDirectory, rewriteCrcs, type ZipEntry } from '../zip';
import type { Tensor } from '../../tensor/tensor';
import { FileError, asFileError } from '../../errors/fileError';
import { isPickleStructure } from './moduleHints';
import { openPytorch } from './open';
import { tensorPatches, type TensorPatch } from '../core/tensorPatches';

function isZipFile(path: string): boolean {
  return readRange(path, 0, 4).readUInt32LE(0) === SIG_LOCAL;
}

function entriesTouched(entries: readonly ZipEntry[], patches: readonly TensorPatch[]): ZipEntry[] {
  const touched = new Set<ZipEntry>();
  for (const p of patches) {
    const e = entries.find((x) => p.offset >= x.dataStart && p.offset + p.bytes.length <= x.dataStart + x.compressedSize);
    if (!e || e.method !== 0) throw new Error(`tensor ${p.name} does not lie inside one stored zip entry`);
    touched.add(e);
  }
  return [...touched];
}

function fixZipCrcs(fd: number, patches: readonly TensorPatch[]): void {
  const size = fstatSync(fd).size;
  rewriteCrcs(fd, size, entriesTouched(readZipDirectory(fd, size).entries, patches));
}

function verifyZipCrcs(path: string, patches: readonly TensorPatch[]): void {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    checkCrcs(fd, size, entriesTouched(readZipDirectory(fd, size).entries, patches));
  } finally {
    closeSync(fd);
  }
}

/** The copy must list the same tensors at the same places, with the new bytes in them. */
function verifyCopy(cp: Checkpoint, tmp: string, patches: readonly TensorPatch[], zip: boolean): void {
  const back = openPytorch(tmp);
  if (back.tensors.length !== cp.tensors.length) throw new Error(`the written copy lists ${back.tensors.length} tensors instead of ${cp.tensors.length}`);
  back.tensors.forEach((t, i) => {
    const o = cp.tensors[i];
    if (t.name !== o.name || t.dtype !== o.dtype || t.offset !== o.offset || t.byteLength !== o.byteLength) throw new Error(`the written copy describes tensor ${o.name} differently`);
  });
  for (const p of patches) {
    if (!readRange(tmp, p.offset, p.bytes.length).equals(p.bytes)) throw new Error(`tensor ${p.name} does not read back from the written copy`);
  }
  if (zip) verifyZipCrcs(tmp, patches);
}

export function writePytorch(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  // A copy keeps every byte of the pickle but the weights: it would run the same payload under torch.load.
  const executable = isPickleStructure(cp.structure) ? cp.structure.executable : [];
  if (executable.length > 0) {
    throw new FileError(cp.path, `the pickle calls ${executable.join(', ')}, which can execute code when Python loads the file; a balanced copy would carry the same calls, so nothing is written`, 'refused');
  }
  assertUnchanged(cp);
  const patches = tensorPatches(cp, changed);
  const zip = isZipFile(cp.path);
  try {
    writePatchedCopy(cp.path, target, patches, {
      backup: opts.backup,
      fixup: (fd) => {
        // The copy is only good if the source did not change under it.
        assertUnchanged(cp);
        if (zip) fixZipCrcs(fd, patches);
      },
      verify: (tmp) => verifyCopy(cp, tmp, patches, zip),
    });
  } catch (e) {
    // A problem of the source (it changed, a tensor does not fit) names the source; others the target.
    if (e instanceof FileError && e.path === cp.path) throw e;
    throw asFileError(target, e);
  }
  return [target];
}
