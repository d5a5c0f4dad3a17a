// Keras 3 `.keras` archives: a zip of config.json (the topology), metadata.json and
// model.weights.h5, whose datasets sit at `layers/<snake_case(class)>[_<n>]/vars/<i>` — numbered
// per class in layer order, not by layer name. h5wasm opens only real files, so the weights
// file is extracted to a temporary folder to be read, and rewritten there before re-zipping.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { File as H5File } from 'h5wasm';
import type { Tensor } from '../../tensor/tensor';
import { assertUnchanged, stampOf, type Checkpoint } from '../core/checkpoint';
import type { WriteOptions } from '../core/format';
import { parseModelConfig, type KerasLayer, type KerasModel } from './config';
import { closeHdf5, groupAt, openHdf5 } from './hdf5';
import { KERAS_ZIP_FORMAT, type KerasStructure } from './structure';
import { variableRoles, snakeCase } from './variables';
import { readLayerWeights, type LayerDatasets } from './weights';
import { plannedWrites, verifyDatasets, writeDatasets } from './writeBack';
import { readZipEntry, readZipFileDirectory, writeZipFile, type ZipDirectory, type ZipEntry, type ZipItem } from '../zip';
import { fail } from '../../errors/fileError';

const CONFIG = 'config.json';
const METADATA = 'metadata.json';
const WEIGHTS = 'model.weights.h5';


function jsonEntry(path: string, dir: ZipDirectory, name: string): unknown {
  const e = dir.byName.get(name);
  if (!e) return undefined;
  try {
    return JSON.parse(readZipEntry(path, e).toString('utf8'));
  } catch (err) {
    const msg = (err as Error).message;
    return fail(path, msg.startsWith(path) ? msg.slice(path.length + 2) : `${name} is not valid JSON (${msg})`);
  }
}

/** Runs `body` with the archive's weights file extracted to a temporary path. */
function withWeightsFile<T>(path: string, entry: ZipEntry, body: (h5Path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'synbal-keras-'));
  try {
    const h5Path = join(dir, WEIGHTS);
    writeFileSync(h5Path, readZipEntry(path, entry));
    return body(h5Path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Layers whose weights Keras saved, in the order (and so with the numbering) it saved them. */
function savedLayers(model: KerasModel): KerasLayer[] {
  return model.className === 'Sequential' ? model.layers.filter((l) => l.className !== 'InputLayer') : model.layers;
}

function numbered(keys: string[]): string[] {
  return keys.filter((k) => /^\d+$/.test(k)).sort((a, b) => Number(a) - Number(b));
}

/** Where each layer's variables are: by class-numbered path, else (older files) by layer name. */
function layerDatasets(path: string, f: H5File, model: KerasModel): { layers: LayerDatasets[]; warnings: string[] } {
  const warnings: string[] = [];
  const counts = new Map<string, number>();
  const layers: LayerDatasets[] = [];
  const root = groupAt(f, 'layers', path) ? 'layers' : groupAt(f, '_layer_checkpoint_dependencies', path) ? '_layer_checkpoint_dependencies' : undefined;
  if (!root) fail(path, `${WEIGHTS} has no "layers" group`);
  for (const layer of savedLayers(model)) {
    const base = snakeCase(layer.className);
    const n = counts.get(base) ?? 0;
    counts.set(base, n + 1);
    const candidates = [`${root}/${n === 0 ? base : `${base}_${n}`}/vars`, `${root}/${layer.name}/vars`];
    const at = candidates.find((c) => groupAt(f, c, path));
    const keys = at ? numbered(groupAt(f, at, path)!.keys()) : [];
    if (!at && (variableRoles(layer.className, layer.config)?.length ?? 0) > 0) {
      fail(path, `layer ${layer.name} (${layer.className}) has no weights in ${WEIGHTS} (looked for ${candidates.join(' and ')})`);
    }
    const roles = variableRoles(layer.className, layer.config) ?? [];
    if (keys.length > roles.length && roles.length > 0) warnings.push(`layer ${layer.name} (${layer.className}) has ${keys.length} variables; its config explains ${roles.length}`);
    layers.push({
      layer,
      datasets: keys.map((k, i) => {
        const role = roles[i] ?? `var${k}`;
        return { role, dataset: `${at}/${k}`, tensor: `${layer.name}/${role}` };
      }),
    });
  }
  return { layers, warnings };
}

interface Archive {
  dir: ZipDirectory;
  weights: ZipEntry;
  model: KerasModel;
  kerasVersion?: string;
}

function readArchive(path: string): Archive {
  const dir = readZipFileDirectory(path);
  const config = jsonEntry(path, dir, CONFIG);
  if (config === undefined) fail(path, `a zip archive without ${CONFIG}: not a Keras 3 model file`);
  const model = parseModelConfig(config, path);
  const weights = dir.byName.get(WEIGHTS);
  if (!weights) {
    const npz = dir.byName.has('model.weights.npz');
    fail(path, npz ? 'the weights are stored as model.weights.npz, which is not supported' : `the archive has no ${WEIGHTS}`);
  }
  const meta = jsonEntry(path, dir, METADATA) as { keras_version?: unknown } | undefined;
  return { dir, weights, model, kerasVersion: typeof meta?.keras_version === 'string' ? meta.keras_version : undefined };
}

export function openKerasZip(path: string): Checkpoint {
  let stamp;
  try {
    stamp = stampOf(path);
  } catch (e) {
    fail(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const archive = readArchive(path);
  const body = withWeightsFile(path, archive.weights, (h5Path) => {
    const f = openHdf5(h5Path, 'r', `${path} (${WEIGHTS})`);
    try {
      const { layers, warnings } = layerDatasets(path, f, archive.model);
      const read = readLayerWeights(path, f, layers);
      return { ...read, warnings: [...warnings, ...read.warnings] };
    } finally {
      closeHdf5(f);
    }
  });
  const structure: KerasStructure = { kind: 'keras', model: archive.model, weights: body.weights, kerasVersion: archive.kerasVersion, weightsEntry: WEIGHTS };
  const cp: Checkpoint = { path, format: KERAS_ZIP_FORMAT, tensors: body.tensors, files: [stamp], warnings: body.warnings, structure };
  assertUnchanged(cp);
  return cp;
}

/**
 * Rewrites the weights file, then a new archive with every other entry copied byte for byte
 * and the weights entry stored (or deflated) as before; verified, then renamed into place.
 */
export function writeKerasZip(cp: Checkpoint, changed: ReadonlyMap<string, Tensor>, target: string, opts: WriteOptions = {}): string[] {
  assertUnchanged(cp);
  const writes = plannedWrites(cp, changed);
  const archive = readArchive(cp.path);
  const label = `${target} (${WEIGHTS})`;
  const h5Bytes = withWeightsFile(cp.path, archive.weights, (h5Path) => {
    writeDatasets(h5Path, writes, label);
    verifyDatasets(h5Path, writes, label);
    return readFileSync(h5Path);
  });
  const items: ZipItem[] = archive.dir.entries.map((e) =>
    e === archive.weights ? { name: e.name, method: e.method, data: h5Bytes, dosTime: e.dosTime, dosDate: e.dosDate } : { copy: e, from: cp.path },
  );
  writeZipFile(target, items, {
    backup: opts.backup,
    check: (tmp, written) => {
      const weights = written.byName.get(WEIGHTS);
      if (!weights) fail(target, `the written archive lost ${WEIGHTS}`);
      withWeightsFile(tmp, weights, (h5Path) => verifyDatasets(h5Path, writes, label));
    },
  });
  return [target];
}
