// The notes the builder leaves for the user, worded in one place (tests and the TF.js builder
// match on their text).
import type { KerasLayer } from '../config';
import type { KerasStructure } from '../structure';

/** Always the first note; the TF.js layers-model builder rewrites its opening words. */
export function topologyNote(s: KerasStructure): string {
  const model = s.model;
  return `topology from the Keras ${s.kerasVersion ?? (model.generation === 3 ? '3' : '2')} config of ${model.className} model "${model.name}" (${model.layers.length} layers)`;
}

export function opaqueNote(layer: KerasLayer, reason: string): string {
  return `${layer.name} (${layer.className}): ${reason}; the units feeding it stay fixed and its output counts as a network input`;
}

export function unmodeledOutputNote(layer: string): string {
  return `output ${layer} comes from a layer the network does not model`;
}

export function droppedOutputActivationNote(group: string, activationName: string): string {
  return `output ${group}: its ${activationName} is left out of forward passes (outputs are never rescaled, so it does not matter to balancing)`;
}

export function caveatNotes(caveats: ReadonlySet<string>): string[] {
  return caveats.size ? [`forward passes of this network are not exact: ${[...caveats].join('; ')}`] : [];
}
