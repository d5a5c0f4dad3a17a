// TensorFlow.js models (model.json + shards, or both wrapped in JavaScript modules).
import type { ModelFormat } from '../core/format';
import { openTfjs, sniffTfjs, TFJS_FORMAT } from './read';
import { writeTfjs } from './write';
import { tfjsToNetwork } from './network';

export { openTfjs, sniffTfjs, tfjsInfoOf, TFJS_FORMAT, type TfjsGraphNode, type TfjsGraphStructure, type TfjsInfo, type TfjsLayersStructure, type TfjsStructure } from './read';
export { shardCopyPath, writeTfjs } from './write';

export const tfjsFormat: ModelFormat = {
  id: TFJS_FORMAT,
  description: 'TensorFlow.js model (model.json + weight shards)',
  // Not 'js': workspace scans would sniff every script of a JavaScript project. A model
  // wrapped in a script is still read when named directly (or included by a setting).
  extensions: ['json'],
  statesGraph: true,
  sniff: sniffTfjs,
  open: openTfjs,
  toNetwork: (cp) => tfjsToNetwork(cp),
  write: writeTfjs,
};

export { tfjsWeightsFormat } from './weightsOnly';
