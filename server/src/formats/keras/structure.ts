// What the Keras readers leave in Checkpoint.structure: the normalized model config and, for
// every weight, the layer and role it belongs to and the HDF5 dataset that holds it.
import type { Checkpoint } from '../core/checkpoint';
import type { KerasModel } from './config';
import { FileError } from '../../errors/fileError';

export const KERAS_H5_FORMAT = 'keras-h5';
export const KERAS_ZIP_FORMAT = 'keras';

export interface KerasWeight {
  layer: string;
  /** kernel, bias, gamma, beta, moving_mean, moving_variance, alpha, … or var<i> when unknown. */
  role: string;
  /** The checkpoint tensor's name. */
  tensor: string;
  /** Path of the dataset inside the HDF5 file (the archive's weights file for `.keras`). */
  dataset: string;
}

export interface KerasStructure {
  kind: 'keras';
  model: KerasModel;
  weights: KerasWeight[];
  kerasVersion?: string;
  backend?: string;
  /** `.keras` only: the archive entry that holds the weights. */
  weightsEntry?: string;
}

export function isKerasCheckpoint(cp: Checkpoint): boolean {
  return (cp.format === KERAS_H5_FORMAT || cp.format === KERAS_ZIP_FORMAT) && (cp.structure as KerasStructure | undefined)?.kind === 'keras';
}

export function kerasStructureOf(cp: Checkpoint): KerasStructure {
  if (!isKerasCheckpoint(cp)) throw new FileError(cp.path, `not a Keras model checkpoint (format ${cp.format})`);
  return cp.structure as KerasStructure;
}
