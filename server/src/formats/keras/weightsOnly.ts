// Keras 2 weights-only HDF5 files (`model.save_weights('w.h5')`): no model_config, so no graph;
// the root lists `layer_names`, each layer group its `weight_names`, and the weights are the
// datasets `<layer>/<weight name>`. Read as a state dict: the layers come from a sidecar
// manifest (`<file>.synbal.json`) or from the tensor names (stateDict/), as for safetensors.
// Written like a Keras model file: the changed datasets rewritten in a copy, read back.
import { closeSync, openSync, readSync } from 'node:fs';
import type { File as H5File } from 'h5wasm';
import type { Tensor } from '../../tensor/tensor';
import { assertUnchanged, isFloatDType, stampOf, typedFromBytes, type Checkpoint, type TensorEntry } from '../core/checkpoint';
import type { ModelFormat, WriteOptions } from '../core/format';
import { writePatchedCopy } from '../core/patch';
import { stateDictToNetwork, topologyFor } from '../stateDict/build';
import { topologyToNetwork } from '../stateDict/layerSpec';
import { proposeChannelsLastTopology } from './weightNames';
import type { BuiltNetwork, NetworkOptions } from '../core/format';
import { closeHdf5, datasetInfo, groupAt, kerasReady, listAttribute, openHdf5, readDatasetBytes, stringAttribute } from './hdf5';
import { verifyDatasets, writeDatasets, type DatasetWrite } from './writeBack';
import { asFileError, fail, FileError } from '../../errors/fileError';

export const KERAS_WEIGHTS_H5_FORMAT = 'keras-weights-h5';

export interface KerasWeightsStructure {
  kind: 'keras-weights';
  /** Tensor name → its dataset. */
  datasets: Record<string, string>;
  layerNames: string[];
  kerasVersion?: string;
  backend?: string;
}

const MAX_ELEMENTS = 2 ** 31;
const SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * An HDF5 file whose first megabyte names `layer_names` or `weight_names` and never
 * `model_config` (Keras writes the config before the weights, so a model file names it early).
 */
export function sniffKerasWeights(head: Buffer, path: string): boolean {
  if (!head.subarray(0, 8).equals(SIGNATURE)) return false;
  let more: Buffer;
  try {
    const fd = openSync(path, 'r');
    try {
      more = Buffer.alloc(1 << 20);
      more = more.subarray(0, readSync(fd, more, 0, more.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  return !more.includes('model_config') && (more.includes('layer_names') || more.includes('weight_names'));
}

function readWeightsOnly(path: string, f: H5File): Pick<Checkpoint, 'tensors' | 'warnings' | 'structure'> {
  if (stringAttribute(f, 'model_config')) fail(path, 'the file has a model_config: it is a Keras model file, not weights only');
  const layerNames = listAttribute(f, 'layer_names');
  if (!layerNames) fail(path, 'an HDF5 file without Keras "layer_names": not a Keras weights file');
  const tensors: TensorEntry[] = [];
  const datasets: Record<string, string> = {};
  const warnings: string[] = [];
  for (const layer of layerNames) {
    const g = groupAt(f, layer, path);
    if (!g) fail(path, `layer ${layer} is listed in layer_names but has no group`);
    for (const w of listAttribute(g, 'weight_names') ?? []) {
      const dataset = `${layer}/${w}`;
      // The tensor is named as in a Keras model file, without the `:0` TensorFlow adds.
      const name = dataset.replace(/:\d+$/, '');
      if (datasets[name]) fail(path, `two weights are both named ${name}`);
      const info = datasetInfo(f, dataset, path);
      if (!info) fail(path, `layer ${layer} lists weight ${w}, but there is no dataset ${dataset}`);
      const elements = info.shape.reduce((a, b) => a * b, 1);
      if (!info.shape.every((n) => Number.isSafeInteger(n) && n >= 0) || elements > MAX_ELEMENTS) fail(path, `dataset ${dataset} has an impossible shape [${info.shape.join(', ')}]`);
      const entry: TensorEntry = { name, dtype: info.dtype, shape: info.shape, file: path, offset: 0, byteLength: elements * info.itemSize, encoding: 'hdf5' };
      if (isFloatDType(info.dtype)) entry.decoded = { name, dtype: info.dtype, shape: info.shape, data: typedFromBytes(info.dtype, readDatasetBytes(f, info, path)) };
      else entry.readOnlyReason = `${info.dtype} values (quantized or not weights) are never rewritten`;
      tensors.push(entry);
      datasets[name] = dataset;
    }
  }
  if (!tensors.length) warnings.push('the file lists no weights');
  const structure: KerasWeightsStructure = { kind: 'keras-weights', datasets, layerNames, kerasVersion: stringAttribute(f, 'keras_version')?.[0], backend: stringAttribute(f, 'backend')?.[0] };
  return { tensors, warnings, structure };
}

export function openKerasWeights(path: string): Checkpoint {
  let stamp;
  try {
    stamp = stampOf(path);
  } catch (e) {
    fail(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!kerasReady()) fail(path, 'the HDF5 library is not loaded (prepareKeras)');
  const f = openHdf5(path, 'r');
  let body: Pick<Checkpoint, 'tensors' | 'warnings' | 'structure'>;
  try {
    body = readWeightsOnly(path, f);
  } finally {
    closeHdf5(f);
  }
  const cp: Checkpoint = { path, format: KERAS_WEIGHTS_H5_FORMAT, files: [stamp], ...body };
  assertUnchanged(cp);
  return cp;
}

export function writeKerasWeights(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  assertUnchanged(cp);
  const s = cp.structure as KerasWeightsStructure | undefined;
  if (s?.kind !== 'keras-weights') throw new FileError(cp.path, 'not a Keras weights file');
  const entries = new Map(cp.tensors.map((t) => [t.name, t]));
  const writes: DatasetWrite[] = [...changed].map(([name, t]) => {
    const e = entries.get(name);
    const dataset = s.datasets[name];
    if (!e || !dataset) fail(cp.path, `there is no tensor ${name} to replace`);
    if (e.readOnlyReason) fail(cp.path, `tensor ${name} cannot be rewritten: ${e.readOnlyReason}`);
    if (t.dtype !== e.dtype || t.data.length !== e.shape.reduce((a, b) => a * b, 1)) fail(cp.path, `tensor ${name}: the replacement does not match [${e.shape.join(', ')}] ${e.dtype}`);
    return { dataset, tensor: t };
  });
  writePatchedCopy(cp.path, target, [], {
    backup: opts.backup,
    fixup: (_fd, tmp) => writeDatasets(tmp, writes, target),
    verify: (tmp) => verifyDatasets(tmp, writes, target),
  });
  return [target];
}

export const kerasWeightsH5Format: ModelFormat = {
  id: KERAS_WEIGHTS_H5_FORMAT,
  description: 'Keras 2 weights-only HDF5 file (save_weights .h5)',
  extensions: ['h5', 'hdf5'],
  sniff: sniffKerasWeights,
  statesGraph: false,
  open: openKerasWeights,
  toNetwork: channelsLastStateDictNetwork,
  write: writeKerasWeights,
};


/**
 * A channels-last state dict's network: from its manifest or the PyTorch naming conventions
 * when they apply, else from layers proposed by its weight names (unconfirmed, so visible).
 */
export function channelsLastStateDictNetwork(cp: Checkpoint, opts: NetworkOptions = {}): BuiltNetwork {
  if (topologyFor(cp)) return stateDictToNetwork(cp, opts);
  const topo = proposeChannelsLastTopology(cp);
  if (!topo) return stateDictToNetwork(cp, opts);
  try {
    return { network: topologyToNetwork(cp, topo, { defaultActivation: opts.defaultActivation }), notes: topo.notes };
  } catch (e) {
    throw asFileError(cp.path, e);
  }
}
