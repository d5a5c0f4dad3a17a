// Which format a file is in (sniffed from its bytes, not its name), and its reader/writer.
// A new format is one module with a ModelFormat and one line in FORMATS.
import { closeSync, openSync, readSync } from 'node:fs';
import type { Tensor } from '../tensor/tensor';
import { ChangedWhileReading, type Checkpoint } from './checkpoint';
import { networkJsonFormat } from './networkJson';
import { kerasH5Format, kerasZipFormat } from './keras';
import { npyFormat, npzFormat } from './numpy';
import { onnxFormat } from './onnx/format';
import { tfjsFormat } from './tfjs';
import { pytorchFormat } from './pytorch';
import { safetensorsFormat } from './safetensors';
import { safetensorsIndexFormat } from './safetensorsIndex';

export interface WriteOptions {
  /** Replacing the input itself: keep `<file>.bak`. */
  backup?: boolean;
}

export interface ModelFormat {
  id: string;
  description: string;
  /** Extensions this format is usually saved with (for workspace globs), without dots. */
  extensions: readonly string[];
  /** Cheap check on the file's first bytes (and its name, where bytes cannot tell). */
  sniff(head: Buffer, path: string): boolean;
  open(path: string): Checkpoint;
  /**
   * Writes the checkpoint to `target` with the `changed` tensors replacing their originals
   * (same names, dtypes and shapes), every other byte as it was; safely (temporary file,
   * verified, renamed). Returns every file written, the main one first.
   */
  write(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts?: WriteOptions): string[];
}

// Sniffed in this order: the index format claims only *.safetensors.index.json files, and
// PyTorch's zip goes before the other zip-based formats (.keras, .npz).
export const FORMATS: readonly ModelFormat[] = [
  safetensorsIndexFormat,
  networkJsonFormat,
  safetensorsFormat,
  pytorchFormat,
  kerasH5Format,
  kerasZipFormat,
  npyFormat,
  npzFormat,
  onnxFormat,
  tfjsFormat,
];

const HEAD_BYTES = 4096;

function head(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const n = readSync(fd, buf, 0, HEAD_BYTES, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** No registered format recognises the file's bytes (or it is empty). */
export class UnknownFormatError extends Error {}

export function detectFormat(path: string): ModelFormat {
  let h: Buffer;
  try {
    h = head(path);
  } catch (e) {
    throw new Error(`${path}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (h.length === 0) throw new UnknownFormatError(`${path}: the file is empty`);
  const format = FORMATS.find((f) => f.sniff(h, path));
  if (!format) throw new UnknownFormatError(`${path}: not a model format this tool knows (known: ${FORMATS.map((f) => f.description).join('; ')})`);
  return format;
}

/** Opens a model file; every error message starts with the file's path. */
export function openModel(path: string): { format: ModelFormat; checkpoint: Checkpoint } {
  const format = detectFormat(path);
  try {
    return { format, checkpoint: format.open(path) };
  } catch (e) {
    if (e instanceof ChangedWhileReading) throw e;
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(path) ? msg : `${path}: ${msg}`);
  }
}
