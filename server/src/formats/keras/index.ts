// The two Keras formats. Both need h5wasm loaded first: `await prepareKeras()` once at start-up;
// afterwards open and write are synchronous like every other format's.
import type { ModelFormat } from '../core/format';
import { openKerasH5, writeKerasH5 } from './keras2';
import { openKerasZip, writeKerasZip } from './keras3';
import { KERAS_H5_FORMAT, KERAS_ZIP_FORMAT } from './structure';
import { firstZipEntryName } from '../zip';
import { kerasToNetwork } from './network';

export { prepareKeras, kerasReady } from './hdf5';
export { KERAS_H5_FORMAT, KERAS_ZIP_FORMAT, isKerasCheckpoint, kerasStructureOf, type KerasStructure, type KerasWeight } from './structure';
export type { KerasLayer, KerasModel, TensorRef } from './config';

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** HDF5 puts its signature at 0, or after a user block of 512, 1024, 2048, … bytes. */
export function isHdf5(head: Buffer): boolean {
  for (let at = 0; at + 8 <= head.length; at = at === 0 ? 512 : at * 2) {
    if (head.subarray(at, at + 8).equals(HDF5_SIGNATURE)) return true;
  }
  return false;
}

const KERAS_ENTRIES = new Set(['metadata.json', 'config.json', 'model.weights.h5']);

export const kerasH5Format: ModelFormat = {
  id: KERAS_H5_FORMAT,
  description: 'Keras 2 HDF5 model (.h5)',
  extensions: ['h5', 'hdf5'],
  sniff: (head) => isHdf5(head),
  statesGraph: true,
  open: openKerasH5,
  toNetwork: (cp) => kerasToNetwork(cp),
  write: writeKerasH5,
};

export const kerasZipFormat: ModelFormat = {
  id: KERAS_ZIP_FORMAT,
  description: 'Keras 3 model archive (.keras)',
  extensions: ['keras'],
  sniff: (head, path) => {
    const first = firstZipEntryName(head);
    return first !== undefined && (KERAS_ENTRIES.has(first) || (path.toLowerCase().endsWith('.keras') && !first.endsWith('.npy')));
  },
  statesGraph: true,
  open: openKerasZip,
  toNetwork: (cp) => kerasToNetwork(cp),
  write: writeKerasZip,
};
export { channelsLastStateDictNetwork, kerasWeightsH5Format, KERAS_WEIGHTS_H5_FORMAT } from './weightsOnly';
