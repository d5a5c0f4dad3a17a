// Keras 2 `.h5` model files: the `model_config` attribute states the topology; weights live at
// `model_weights/<layer>/<weight name>`, listed (in their real order — `keys()` is alphabetical)
// by the `layer_names` and `weight_names` attributes. Optimizer state is ignored.
import type { File as H5File } from 'h5wasm';
import type { Tensor } from '../../tensor/tensor';
import { assertUnchanged, stampOf, type Checkpoint } from '../core/checkpoint';
import { writePatchedCopy } from '../core/patch';
import type { WriteOptions } from '../core/format';
import { parseModelConfig } from './config';
import { closeHdf5, groupAt, listAttribute, openHdf5, stringAttribute } from './hdf5';
import { KERAS_H5_FORMAT, type KerasStructure } from './structure';
import { readLayerWeights, type LayerDatasets } from './weights';
import { roleFromWeightName, variableRoles } from './variables';
import { plannedWrites, verifyDatasets, writeDatasets } from './writeBack';
import { fail } from '../../errors/fileError';


function modelConfig(path: string, f: H5File): unknown {
  const text = stringAttribute(f, 'model_config')?.[0];
  if (text === undefined) {
    const weightsOnly = listAttribute(f, 'layer_names') !== undefined || (groupAt(f, 'layers', path) !== undefined && groupAt(f, 'vars', path) !== undefined);
    fail(path, weightsOnly
      ? 'an HDF5 file of Keras weights without a model (no "model_config" attribute, as save_weights writes): its topology is unknown'
      : 'an HDF5 file without a Keras "model_config" attribute: not a Keras model file');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(path, `the "model_config" attribute is not valid JSON (${(e as Error).message})`);
  }
}

/** Reads the whole checkpoint (values decoded) while the file is open. */
function readKeras2(path: string, f: H5File): Pick<Checkpoint, 'tensors' | 'warnings' | 'structure'> {
  const model = parseModelConfig(modelConfig(path, f), path);
  const root = groupAt(f, 'model_weights', path);
  if (!root) fail(path, 'the file has a model_config but no "model_weights" group');
  const layerNames = listAttribute(root, 'layer_names');
  if (!layerNames) fail(path, 'the "model_weights" group has no "layer_names" attribute');
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const warnings: string[] = [];
  const layers: LayerDatasets[] = [];
  for (const name of layerNames) {
    const layer = byName.get(name);
    const g = groupAt(f, `model_weights/${name}`, path);
    if (!g) fail(path, `layer ${name} is listed in layer_names but has no group under model_weights`);
    const names = listAttribute(g, 'weight_names') ?? [];
    if (!layer) {
      if (names.length) warnings.push(`weights of layer ${name} belong to no layer of the model config; they are not read`);
      continue;
    }
    let roles = names.map(roleFromWeightName);
    const expected = variableRoles(layer.className, layer.config);
    // Keras 1 named weights "dense_1_W"; their order is still Keras' own.
    if (expected && expected.length === roles.length && !roles.every((r) => expected.includes(r))) {
      warnings.push(`layer ${name}: weight names ${names.join(', ')} do not say what they are; taken in Keras' order (${expected.join(', ')})`);
      roles = expected;
    }
    layers.push({
      layer,
      datasets: names.map((w, i) => ({ role: roles[i], dataset: `model_weights/${name}/${w}`, tensor: `${name}/${w}` })),
    });
  }
  const listed = new Set(layerNames);
  for (const l of model.layers) {
    if (!listed.has(l.name) && l.className !== 'InputLayer') layers.push({ layer: l, datasets: [] });
  }
  const read = readLayerWeights(path, f, layers);
  const structure: KerasStructure = {
    kind: 'keras',
    model,
    weights: read.weights,
    kerasVersion: stringAttribute(f, 'keras_version')?.[0],
    backend: stringAttribute(f, 'backend')?.[0],
  };
  return { tensors: read.tensors, warnings: [...warnings, ...read.warnings], structure };
}

export function openKerasH5(path: string): Checkpoint {
  let stamp;
  try {
    stamp = stampOf(path);
  } catch (e) {
    fail(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const f = openHdf5(path, 'r');
  let body: Pick<Checkpoint, 'tensors' | 'warnings' | 'structure'>;
  try {
    body = readKeras2(path, f);
  } finally {
    closeHdf5(f);
  }
  const cp: Checkpoint = { path, format: KERAS_H5_FORMAT, files: [stamp], ...body };
  assertUnchanged(cp);
  return cp;
}

/** A copy of the file with the changed weights written into their datasets, verified, renamed. */
export function writeKerasH5(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  assertUnchanged(cp);
  const writes = plannedWrites(cp, changed);
  writePatchedCopy(cp.path, target, [], {
    backup: opts.backup,
    fixup: (_fd, tmp) => writeDatasets(tmp, writes, target),
    verify: (tmp) => {
      verifyDatasets(tmp, writes, target);
      const f = openHdf5(tmp, 'r', target);
      try {
        modelConfig(target, f);
      } finally {
        closeHdf5(f);
      }
    },
  });
  return [target];
}
