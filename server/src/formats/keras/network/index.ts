// From a Keras model config (Sequential or functional, Keras 2 or 3) to the engine's Network.
// Each weighted layer (Dense, Conv*, depthwise, separable) makes a group of units, one per
// output channel. The layers after it that act per channel — BatchNormalization, activations,
// pooling — fold into that group while the engine's order allows (BN → activation → pool) and
// nothing else reads the intermediate value; otherwise they get a group of their own, joined
// to their input by a skip connection (which ties the two scales). A residual Add is such a
// group with several skips; a Concatenate is kept as parts that its readers connect to one by
// one. Layers that do not pass a positive scale through keep the units feeding them fixed,
// and their outputs count as network inputs.
//
// Phases: planLayers (config → LayerPlan) → classifyLayers (→ ClassifiedLayer[]) →
// indexWeights (→ WeightIndex) → traceLayers (→ Trace) → assembleNetwork (→ BuiltNetwork).
import type { Checkpoint } from '../../core/checkpoint';
import type { BuiltNetwork } from '../../core/format';
import { kerasStructureOf } from '../structure';
import { assembleNetwork } from './assemble';
import { classifyLayers } from './classify';
import { topologyNote } from './notes';
import { planLayers } from './plan';
import { traceLayers } from './trace';
import { indexWeights } from './weights';
import { asFileError } from '../../../errors/fileError';

/** The Network a Keras checkpoint's config describes, with notes on what was inferred. */
export function kerasToNetwork(cp: Checkpoint): BuiltNetwork {
  const s = kerasStructureOf(cp);
  try {
    const plan = planLayers(s.model);
    const layers = classifyLayers(plan.order);
    const trace = traceLayers(layers, plan.uses, indexWeights(cp, s));
    return assembleNetwork(cp.path, trace, s.model.outputs, [topologyNote(s)]);
  } catch (e) {
    throw asFileError(cp.path, e);
  }
}
