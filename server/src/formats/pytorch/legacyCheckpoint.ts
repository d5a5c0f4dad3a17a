// PyTorch's legacy format (torch.save before 1.6, or _use_new_zipfile_serialization=False):
// five pickles back to back — magic number, protocol version, sys_info, the object, the
// storage keys — then each storage in key order as an int64 LE element count and its raw
// bytes. Only the pickles are read; the storages become byte ranges.
import { readAt } from '../zip';
import { unpickle, type UnpickleHooks } from './pickle';
import { FileSource } from './source';
import { tensorEntries, type StorageBytes } from './tensors';
import { TorchUnpickler, type StorageRef } from './torchGlobals';
import { PyDict, PyGlobal, describe } from './values';
import { walkPickle } from './walk';
import type { PickleContents } from './zipCheckpoint';

export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** For the three small header pickles: they name no globals and no storages. */
const NO_GLOBALS: UnpickleHooks = { findGlobal: (m, n) => new PyGlobal(m, n) };

/** The first pickle of a legacy file is the magic number; `head` may be a file's first bytes. */
export function isLegacyMagic(first: unknown): boolean {
  return first === LEGACY_MAGIC;
}

function step<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

export function readLegacyCheckpoint(path: string, fd: number, size: number): PickleContents {
  const src = new FileSource(fd, size);
  const magic = step('the magic number pickle', () => unpickle(src, NO_GLOBALS));
  if (!isLegacyMagic(magic)) throw new Error('not a PyTorch checkpoint: the first pickle is not the legacy magic number');
  const protocol = step('the protocol pickle', () => unpickle(src, NO_GLOBALS));
  if (protocol !== LEGACY_PROTOCOL) throw new Error(`unsupported legacy protocol version ${describe(protocol)} (expected ${LEGACY_PROTOCOL})`);
  const sysInfo = step('the sys_info pickle', () => unpickle(src, NO_GLOBALS));
  if (sysInfo instanceof PyDict && sysInfo.get('little_endian') === false) throw new Error('the checkpoint was written on a big-endian machine, which this reader does not convert');

  const unpickler = new TorchUnpickler();
  const root = step('the object pickle', () => unpickle(src, unpickler));
  const keys = step('the storage key pickle', () => unpickle(src, NO_GLOBALS));
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new Error(`the storage key list is ${describe(keys)}, not a list of strings`);

  // Each storage's element size comes from the persistent ids that named it.
  const itemsizes = new Map<string, number>();
  for (const ref of unpickler.storages) if (ref.kind.itemsize !== undefined) itemsizes.set(ref.key, ref.kind.itemsize);
  const located = new Map<string, { offset: number; byteLength: number }>();
  let pos = src.position;
  for (const key of keys as string[]) {
    const itemsize = itemsizes.get(key);
    if (itemsize === undefined) throw new Error(`storage ${key} is listed but no tensor names its type`);
    if (pos + 8 > size) throw new Error(`the file ends before storage ${key} (at byte ${pos}); it is truncated`);
    const count = readAt(fd, pos, 8).readBigInt64LE(0);
    const bytes = count * BigInt(itemsize);
    if (count < 0n || BigInt(pos + 8) + bytes > BigInt(size)) throw new Error(`storage ${key} claims ${count} elements at byte ${pos}, past the end of the file (${size} bytes); it is truncated or damaged`);
    located.set(key, { offset: pos + 8, byteLength: Number(bytes) });
    pos += 8 + Number(bytes);
  }
  const warnings: string[] = [];
  if (pos < size) warnings.push(`${size - pos} bytes after the last storage were ignored`);

  const storageBytes = (ref: StorageRef, tensor: string): StorageBytes => {
    const at = located.get(ref.key);
    if (!at) throw new Error(`tensor ${tensor} uses storage ${ref.key}, which the storage list does not include`);
    const itemsize = ref.kind.itemsize ?? 1;
    const start = (ref.view?.offset ?? 0) * itemsize;
    if (start > at.byteLength) throw new Error(`storage view ${ref.view?.key} starts past the end of storage ${ref.key}`);
    const available = at.byteLength - start;
    const label = ref.view ? `${ref.key} (view ${ref.view.key})` : ref.key;
    return { offset: at.offset + start, byteLength: ref.view ? Math.min(available, ref.numel * itemsize) : available, label };
  };
  const walked = walkPickle(root, [], unpickler.classSources);
  const tensors = tensorEntries(path, walked.tensors, storageBytes, (offset, length) => readAt(fd, offset, length));
  warnings.unshift(...unpickler.warnings(), ...walked.warnings);
  return {
    tensors,
    warnings,
    structure: { container: 'legacy', globals: [...unpickler.placeholders.keys()], executable: unpickler.executable(), ...walked.structure, keys: tensors.map((t) => t.name) },
    rootDescription: walked.rootDescription,
  };
}
