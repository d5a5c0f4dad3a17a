// TensorFlow.js models as the engine's network. A layers model carries a Keras topology, so it
// is built by the Keras builder (the TF.js reader leaves a KerasStructure on the checkpoint);
// a graph model's TF ops are built op by op.
import type { Checkpoint } from '../../core/checkpoint';
import type { BuiltNetwork } from '../../core/format';
import { TFJS_FORMAT, type TfjsStructure } from '../read';
import { tfjsGraphToNetwork } from './graphModel';
import { layersModelToNetwork } from './layersModel';
import { FileError } from '../../../errors/fileError';

export { tfjsGraphToNetwork } from './graphModel';

/** The network of a TF.js checkpoint: layers models through the Keras builder, graph models op by op. */
export function tfjsToNetwork(cp: Checkpoint): BuiltNetwork {
  const s = cp.structure as TfjsStructure | undefined;
  if (cp.format !== TFJS_FORMAT || !s) throw new FileError(cp.path, `not a TensorFlow.js model checkpoint (format ${cp.format})`);
  if (s.kind === 'keras') return layersModelToNetwork(cp);
  return tfjsGraphToNetwork(cp);
}
