// Reading a Keras model's weights out of an open HDF5 file into checkpoint entries (values
// decoded: h5wasm gives no byte offsets), and checking them against what the config needs.
import type { File as H5File } from 'h5wasm';
import { isFloatDType, typedFromBytes, type TensorEntry } from '../core/checkpoint';
import type { KerasLayer } from './config';
import { datasetInfo, readDatasetBytes } from './hdf5';
import type { KerasWeight } from './structure';
import { variableRoles } from './variables';
import { FileError } from '../../errors/fileError';

/** Largest element count a tensor may claim (2^31: far beyond any single Keras weight). */
const MAX_ELEMENTS = 2 ** 31;

export interface LayerDatasets {
  layer: KerasLayer;
  datasets: { role: string; dataset: string; tensor: string }[];
}

export interface ReadWeights {
  tensors: TensorEntry[];
  weights: KerasWeight[];
  warnings: string[];
}

/** Entries for every listed dataset; `file` is the checkpoint's path (errors name it). */
export function readLayerWeights(file: string, h5: H5File, layers: readonly LayerDatasets[]): ReadWeights {
  const tensors: TensorEntry[] = [];
  const weights: KerasWeight[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const { layer, datasets } of layers) {
    for (const d of datasets) {
      if (seen.has(d.tensor)) throw new FileError(file, `two weights are both named ${d.tensor}`);
      seen.add(d.tensor);
      const info = datasetInfo(h5, d.dataset, file);
      if (!info) throw new FileError(file, `layer ${layer.name} lists weight ${d.tensor}, but there is no dataset ${d.dataset}`);
      const elements = info.shape.reduce((a, b) => a * b, 1);
      if (!info.shape.every((n) => Number.isSafeInteger(n) && n >= 0) || elements > MAX_ELEMENTS) {
        throw new FileError(file, `dataset ${d.dataset} has an impossible shape [${info.shape.join(', ')}]`);
      }
      const entry: TensorEntry = { name: d.tensor, dtype: info.dtype, shape: info.shape, file, offset: 0, byteLength: elements * info.itemSize, encoding: 'hdf5' };
      if (isFloatDType(info.dtype)) {
        entry.decoded = { name: d.tensor, dtype: info.dtype, shape: info.shape, data: typedFromBytes(info.dtype, readDatasetBytes(h5, info, file)) };
      } else {
        entry.readOnlyReason = `${info.dtype} values (quantized or not weights) are never rewritten`;
      }
      tensors.push(entry);
      weights.push({ layer: layer.name, role: d.role, tensor: d.tensor, dataset: d.dataset });
    }
    checkRoles(file, layer, datasets.map((d) => d.role), warnings);
  }
  return { tensors, weights, warnings };
}

/** A layer whose config needs a weight the file lacks is an error; extra weights are noted. */
function checkRoles(file: string, layer: KerasLayer, found: string[], warnings: string[]): void {
  const expected = variableRoles(layer.className, layer.config);
  if (!expected) {
    if (found.length) warnings.push(`layer ${layer.name}: ${layer.className} is not a known layer class; its ${found.length} weights are kept as they are`);
    return;
  }
  for (const role of expected) {
    if (!found.includes(role)) {
      throw new FileError(file, `layer ${layer.name} (${layer.className}) needs a "${role}" weight, which the file does not have`);
    }
  }
  const extra = found.filter((r) => !expected.includes(r));
  if (extra.length) warnings.push(`layer ${layer.name} (${layer.className}) has weights its config does not explain: ${extra.join(', ')}`);
}
