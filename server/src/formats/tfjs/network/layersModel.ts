// A TF.js layers model is a Keras model config with TF.js weights: the Keras builder does the
// work, and its notes say where the topology really came from.
import type { Checkpoint } from '../../core/checkpoint';
import type { BuiltNetwork } from '../../core/format';
import { kerasToNetwork } from '../../keras/network';
import { KERAS_H5_FORMAT } from '../../keras/structure';

export function layersModelToNetwork(cp: Checkpoint): BuiltNetwork {
  // The Keras builder asks for a Keras checkpoint; the tensors and structure are the same.
  const built = kerasToNetwork({ ...cp, format: KERAS_H5_FORMAT });
  return { network: built.network, notes: built.notes.map((n) => n.replace(/^topology from the Keras /, 'topology from the TensorFlow.js layers model: Keras ')) };
}
