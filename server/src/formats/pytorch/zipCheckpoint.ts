// PyTorch's zip format (torch.save since 1.6, and TorchScript's torch.jit.save): one
// top-level folder holding data.pkl, whose persistent ids name storages stored as
// data/<key>; TorchScript adds constants.pkl (storages under constants/) and code/.
import type { TensorEntry } from '../core/checkpoint';
import { readAt, readEntry, readZipDirectory, type ZipDirectory, type ZipEntry } from '../zip';
import { unpickle } from './pickle';
import { BufferSource } from './source';
import type { PickleStructure, ScriptClass } from './structure';
import { tensorEntries, type StorageBytes } from './tensors';
import { TorchUnpickler, type StorageRef } from './torchGlobals';
import { moduleOfCodePath, parseScriptClasses } from './torchscript';
import { walkPickle, type NamedTensor } from './walk';

export interface PickleContents {
  tensors: TensorEntry[];
  warnings: string[];
  structure: PickleStructure;
  /** The pickle's result in words (for "holds no tensors" messages). */
  rootDescription: string;
}

/** data.pkl holds descriptors, not weights: real ones are kilobytes to a few megabytes. */
export const MAX_PICKLE_BYTES = 256 * 1024 * 1024;
const MAX_CODE_BYTES = 16 * 1024 * 1024;
const MAX_INFLATED_STORAGE_BYTES = 256 * 1024 * 1024;

/** The entry named `<top folder>/data.pkl`; its folder prefix names every other entry. */
export function findDataPickle(dir: ZipDirectory): ZipEntry | undefined {
  const candidates = dir.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name) || e.name === 'data.pkl');
  return candidates.sort((a, b) => a.name.length - b.name.length)[0];
}

function unpickleEntry(fd: number, entry: ZipEntry, unpickler: TorchUnpickler): unknown {
  const bytes = readEntry(fd, entry, MAX_PICKLE_BYTES);
  try {
    return unpickle(new BufferSource(bytes), unpickler);
  } catch (e) {
    throw new Error(`${entry.name}: ${(e as Error).message}`);
  }
}

function scriptClasses(fd: number, dir: ZipDirectory, prefix: string, warnings: string[]): ScriptClass[] {
  const out: ScriptClass[] = [];
  let budget = MAX_CODE_BYTES;
  for (const e of dir.entries) {
    const module = moduleOfCodePath(e.name, prefix);
    if (module === undefined) continue;
    if (e.size > budget) {
      warnings.push(`TorchScript code beyond ${MAX_CODE_BYTES} bytes was not read (from ${e.name} on)`);
      break;
    }
    budget -= e.size;
    out.push(...parseScriptClasses(module, readEntry(fd, e, MAX_CODE_BYTES).toString('utf8')));
  }
  return out;
}

export function readZipCheckpoint(path: string, fd: number, size: number): PickleContents {
  const dir = readZipDirectory(fd, size);
  const dataPkl = findDataPickle(dir);
  if (!dataPkl) throw new Error('a zip archive without data.pkl: not a PyTorch checkpoint');
  const prefix = dataPkl.name.slice(0, -'data.pkl'.length);
  const byteorder = dir.byName.get(`${prefix}byteorder`);
  if (byteorder && readEntry(fd, byteorder, 16).toString('latin1').trim() === 'big') throw new Error('the checkpoint stores big-endian tensors, which this reader does not convert');
  const isScript = dir.byName.has(`${prefix}constants.pkl`) || dir.entries.some((e) => e.name.startsWith(`${prefix}code/`));
  const warnings: string[] = [];
  const classes = isScript ? scriptClasses(fd, dir, prefix, warnings) : [];

  const inflated = new Map<string, Buffer>();
  let inflatedBytes = 0;
  const storageIn = (folder: string) => (ref: StorageRef, tensor: string): StorageBytes => {
    const name = `${prefix}${folder}/${ref.key}`;
    const e = dir.byName.get(name);
    if (!e) throw new Error(`tensor ${tensor} uses storage ${ref.key}, but the archive has no entry ${name}`);
    const label = `${folder}/${ref.key}`;
    if (ref.kind.itemsize !== undefined && e.size < ref.numel * ref.kind.itemsize) {
      throw new Error(`storage ${label} holds ${e.size} bytes, but the pickle says ${ref.numel} elements of ${ref.kind.torchDtype}`);
    }
    if (e.method === 0) return { offset: e.dataStart, byteLength: e.size, label };
    let bytes = inflated.get(name);
    if (!bytes) {
      if (inflatedBytes + e.size > MAX_INFLATED_STORAGE_BYTES) throw new Error(`storage ${label} is compressed, and compressed storages beyond ${MAX_INFLATED_STORAGE_BYTES} bytes are not read`);
      bytes = readEntry(fd, e, MAX_INFLATED_STORAGE_BYTES);
      inflatedBytes += e.size;
      inflated.set(name, bytes);
    }
    return { offset: e.dataStart, byteLength: e.size, inMemory: bytes, label };
  };
  const readBytes = (offset: number, length: number): Buffer => readAt(fd, offset, length);

  const unpickler = new TorchUnpickler();
  const root = unpickleEntry(fd, dataPkl, unpickler);
  const walked = walkPickle(root, classes, unpickler.classSources);
  const tensors = tensorEntries(path, walked.tensors, storageIn('data'), readBytes);
  warnings.push(...walked.warnings);

  const constantsEntry = dir.byName.get(`${prefix}constants.pkl`);
  if (constantsEntry) {
    const constantsUnpickler = new TorchUnpickler();
    const constants = unpickleEntry(fd, constantsEntry, constantsUnpickler);
    // TorchScript code refers to them as CONSTANTS.c0, CONSTANTS.c1, …
    const items = Array.isArray(constants) ? constants : [];
    const named: NamedTensor[] = [];
    items.forEach((item, i) => {
      for (const t of walkPickle(item).tensors) named.push({ name: `CONSTANTS.c${i}${t.name === 'tensor' ? '' : '.' + t.name}`, ref: t.ref });
    });
    tensors.push(...tensorEntries(path, named, storageIn('constants'), readBytes));
    for (const [name, g] of constantsUnpickler.placeholders) if (!unpickler.placeholders.has(name)) unpickler.placeholders.set(name, g);
  }

  warnings.unshift(...unpickler.warnings());
  const structure: PickleStructure = { container: isScript ? 'torchscript' : 'zip', globals: [...unpickler.placeholders.keys()], executable: unpickler.executable(), ...walked.structure, keys: tensors.map((t) => t.name) };
  return { tensors, warnings, structure, rootDescription: walked.rootDescription };
}
