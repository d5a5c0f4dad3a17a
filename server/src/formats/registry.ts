// Which format a file is in (sniffed from its bytes, not its name), and its slice: reader,
// network builder, writer, verifier. A new format is one folder exporting a ModelFormat
// (core/format.ts) and one line in FORMATS.
import { closeSync, openSync, readSync } from 'node:fs';
import { FileError, UnknownFormatError, asFileError } from '../errors/fileError';
import type { Checkpoint } from './core/checkpoint';
import type { BuiltNetwork, ModelFormat, NetworkOptions } from './core/format';
import { networkJsonFormat } from './networkJson';
import { kerasH5Format, kerasWeightsH5Format, kerasZipFormat } from './keras';
import { npyFormat, npzFormat } from './numpy';
import { onnxFormat } from './onnx/format';
import { tfjsFormat, tfjsWeightsFormat } from './tfjs';
import { pytorchFormat } from './pytorch';
import { safetensorsFormat } from './safetensors';
import { safetensorsIndexFormat } from './safetensors/sharded';

// Sniffed in this order: the index format claims only *.safetensors.index.json files, and
// PyTorch's zip goes before the other zip-based formats (.keras, .npz); Keras weights-only
// files (no model_config) before Keras model files, which claim any HDF5 file.
export const FORMATS: readonly ModelFormat[] = [
  safetensorsIndexFormat,
  networkJsonFormat,
  safetensorsFormat,
  pytorchFormat,
  kerasWeightsH5Format,
  kerasH5Format,
  kerasZipFormat,
  npyFormat,
  npzFormat,
  onnxFormat,
  tfjsFormat,
  tfjsWeightsFormat,
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

export { UnknownFormatError };
export type { ModelFormat };

export function detectFormat(path: string): ModelFormat {
  let h: Buffer;
  try {
    h = head(path);
  } catch (e) {
    throw new FileError(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (h.length === 0) throw new UnknownFormatError(path, 'the file is empty');
  const format = FORMATS.find((f) => f.sniff(h, path));
  if (!format) throw new UnknownFormatError(path, `not a model format this tool knows (known: ${FORMATS.map((f) => f.description).join('; ')})`);
  return format;
}

/** Opens a model file; whatever goes wrong is a FileError naming the file. */
export function openModel(path: string): { format: ModelFormat; checkpoint: Checkpoint } {
  const format = detectFormat(path);
  try {
    return { format, checkpoint: format.open(path) };
  } catch (e) {
    throw asFileError(path, e);
  }
}

/** The format a checkpoint was opened with. */
export function formatOf(cp: Checkpoint): ModelFormat {
  const format = FORMATS.find((f) => f.id === cp.format);
  if (!format) throw new FileError(cp.path, `no format "${cp.format}" is registered`);
  return format;
}

/** The network of an opened checkpoint, built by its format; errors name the file. */
export function networkOf(cp: Checkpoint, opts: NetworkOptions = {}): BuiltNetwork {
  try {
    return formatOf(cp).toNetwork(cp, opts);
  } catch (e) {
    throw asFileError(cp.path, e);
  }
}
