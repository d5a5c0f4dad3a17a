// The sidecar manifest `<checkpoint>.synbal.json`: the layers of a bare state dict, in order,
// with their tensors, kinds and activations (schema: server/schemas/manifest.schema.json).
import { existsSync, readFileSync } from 'node:fs';
import type { LayerSpec, Topology } from './layerSpec';
import { fail } from '../../errors/fileError';

export const MANIFEST_SUFFIX = '.synbal.json';

export interface Manifest {
  $schema?: string;
  version: 1;
  input?: { spatial?: number[] };
  layers: LayerSpec[];
}

export function manifestPathFor(checkpoint: string): string {
  return checkpoint.replace(/\.safetensors\.index\.json$/, '.safetensors') + MANIFEST_SUFFIX;
}


const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isInts = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => Number.isInteger(d) && d >= 0);

function checkLayer(file: string, l: LayerSpec, i: number): void {
  const where = `layers[${i}]`;
  if (!l || typeof l !== 'object') fail(file, `${where} is not an object`);
  if (!isStr(l.name)) fail(file, `${where} needs a "name"`);
  if (l.kind !== 'linear' && l.kind !== 'conv') fail(file, `layer ${l.name}: "kind" must be "linear" or "conv"`);
  if (!isStr(l.weight)) fail(file, `layer ${l.name}: "weight" must name a tensor`);
  for (const key of ['bias', 'activation', 'prelu', 'input', 'residualFrom', 'visibleReason', 'activationSource'] as const) {
    if (l[key] !== undefined && !isStr(l[key])) fail(file, `layer ${l.name}: "${key}" must be a non-empty string`);
  }
  if (l.layout !== undefined && l.layout !== 'out-in' && l.layout !== 'in-out') fail(file, `layer ${l.name}: "layout" must be "out-in" or "in-out"`);
  if (l.groups !== undefined && !(Number.isInteger(l.groups) && l.groups > 0)) fail(file, `layer ${l.name}: "groups" must be a positive integer`);
  for (const key of ['stride', 'padding'] as const) if (l[key] !== undefined && !isInts(l[key])) fail(file, `layer ${l.name}: "${key}" must be a list of integers`);
  if (l.batchnorm !== undefined && (!isStr(l.batchnorm.mean) || !isStr(l.batchnorm.var))) fail(file, `layer ${l.name}: "batchnorm" needs "mean" and "var" tensor names`);
  if (l.pool !== undefined && ((l.pool.kind !== 'max' && l.pool.kind !== 'avg') || !isInts(l.pool.kernel))) fail(file, `layer ${l.name}: "pool" needs "kind" (max or avg) and a "kernel"`);
}

export function parseManifest(text: string, file: string): Topology {
  let doc: Manifest;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(file, `not valid JSON (${(e as Error).message})`);
  }
  if (!doc || doc.version !== 1) fail(file, 'a manifest needs "version": 1');
  if (!Array.isArray(doc.layers) || doc.layers.length === 0) fail(file, 'a manifest needs a non-empty "layers" list');
  doc.layers.forEach((l, i) => checkLayer(file, l, i));
  if (doc.input?.spatial !== undefined && !isInts(doc.input.spatial)) fail(file, '"input.spatial" must be a list of integers');
  return {
    layers: doc.layers.map((l) => ({ ...l, activationSource: l.activation !== undefined ? (l.activationSource ?? `manifest ${file}`) : undefined })),
    inputSpatial: doc.input?.spatial,
    source: file,
    notes: [`layers from the manifest ${file}`],
  };
}

/** The manifest beside a checkpoint, if there is one. */
export function readManifestFor(checkpoint: string): Topology | undefined {
  const path = manifestPathFor(checkpoint);
  if (!existsSync(path)) return undefined;
  return parseManifest(readFileSync(path, 'utf8'), path);
}
