// Opening a PyTorch checkpoint of any container (zip, TorchScript zip, legacy pickles):
// sniffing, the stat-before/stat-after guard against files that change while read, and
// turning every failure into one Error that names the file.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { ChangedWhileReading, stampOf, type Checkpoint, type FileStamp } from '../core/checkpoint';
import { firstZipEntryName, readAt } from '../zip';
import { FileError, asFileError, fail } from '../../errors/fileError';
import { isLegacyMagic, readLegacyCheckpoint } from './legacyCheckpoint';
import { unpickle } from './pickle';
import { BufferSource } from './source';
import { sharedRangeWarnings } from './tensors';
import { PyGlobal } from './values';
import { readZipCheckpoint, type PickleContents } from './zipCheckpoint';

export const PYTORCH_FORMAT = 'pytorch';

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

/** The first local header's name is inside PyTorch's one top-level folder. */
function isTorchZip(head: Buffer): boolean {
  const name = firstZipEntryName(head);
  if (name === undefined) return false;
  return /^[^/]+\/(data\.pkl|data\/|version|constants\.pkl|constants\/|code\/|byteorder|\.data\/)/.test(name) || name === 'data.pkl';
}

/** The legacy format starts with a pickle of its magic number (protocol 2 in practice, any protocol allowed). */
function isLegacy(head: Buffer): boolean {
  if (head.length < 4 || (head[0] !== 0x80 && head[0] !== 0x8a && head[0] !== 0x4c)) return false;
  try {
    return isLegacyMagic(unpickle(new BufferSource(head), { findGlobal: (m, n) => new PyGlobal(m, n) }));
  } catch {
    return false;
  }
}

export function sniffPytorch(head: Buffer): boolean {
  return isTorchZip(head) || isLegacy(head);
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}

function read(path: string, fd: number, size: number): PickleContents {
  const head = readAt(fd, 0, Math.min(size, 4096));
  if (head.length >= 4 && head.subarray(0, 4).equals(ZIP_MAGIC)) return readZipCheckpoint(path, fd, size);
  if (isLegacy(head)) return readLegacyCheckpoint(path, fd, size);
  if (head.length === 0) fail(path, 'the file is empty');
  if (head.subarray(0, 4).equals(Buffer.from('PK\x05\x06', 'latin1'))) fail(path, 'an empty zip archive: not a PyTorch checkpoint');
  fail(path, 'not a PyTorch checkpoint: neither a zip archive nor the legacy pickle format (wrong magic bytes)');
}

export interface OpenHooks {
  /** Runs after the file is parsed, before the final stat (tests simulate a concurrent writer). */
  afterParse?: () => void;
}

function noTensors(path: string, contents: PickleContents): never {
  const dangerous = contents.warnings.filter((w) => w.includes('can execute code'));
  fail(path, `the pickle holds no tensors: its result is ${contents.rootDescription}, not a state dict or module${dangerous.length ? `. ${dangerous.join('; ')}` : ''}`);
}

/** A dict, list or module without tensors is an empty checkpoint; anything else is not a checkpoint at all. */
function isCheckpointShaped(contents: PickleContents): boolean {
  return contents.structure.kind !== 'other' || /^a (dict|list|tuple)/.test(contents.rootDescription);
}

export function openPytorch(path: string, hooks: OpenHooks = {}): Checkpoint {
  let before: FileStamp;
  try {
    before = stampOf(path);
  } catch (e) {
    throw new FileError(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let contents: PickleContents;
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size !== before.size) throw new ChangedWhileReading(path);
      contents = read(path, fd, size);
    } finally {
      closeSync(fd);
    }
    hooks.afterParse?.();
  } catch (e) {
    if (!sameStampNow(path, before)) throw new ChangedWhileReading(path);
    throw asFileError(path, e);
  }
  if (!sameStampNow(path, before)) throw new ChangedWhileReading(path);
  if (contents.tensors.length === 0) {
    if (!isCheckpointShaped(contents)) noTensors(path, contents);
    contents.warnings.push(`the checkpoint holds no tensors (its pickle is ${contents.rootDescription})`);
  }
  return {
    path,
    format: PYTORCH_FORMAT,
    tensors: contents.tensors,
    files: [before],
    warnings: [...contents.warnings, ...sharedRangeWarnings(contents.tensors)],
    structure: contents.structure,
  };
}

function sameStampNow(path: string, before: FileStamp): boolean {
  try {
    return sameStamp(stampOf(path), before);
  } catch {
    return false;
  }
}

