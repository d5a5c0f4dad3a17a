// TF.js weights manifests without a topology (face-api.js ships `*-weights_manifest.json`: a
// list of groups with their shard paths and weights, the network defined in code). Read as a
// state dict: the layers come from a sidecar manifest (`<file>.synbal.json`), else from the
// weight names (keras/weightNames.ts: unconfirmed layers, their units visible).
// Quantized weights (uint8/uint16/float16) are read dequantized and are read-only: the
// manifest's byte layout would change if they were written back as float32.
import type { ModelFormat } from '../core/format';
import { channelsLastStateDictNetwork } from '../keras/weightsOnly';
import { openTfjs, sniffTfjsWeights, TFJS_WEIGHTS_FORMAT } from './read';
import { writeTfjs } from './write';

export const tfjsWeightsFormat: ModelFormat = {
  id: TFJS_WEIGHTS_FORMAT,
  description: 'TensorFlow.js weights manifest without a topology (*-weights_manifest.json + shards)',
  extensions: ['json'],
  statesGraph: false,
  sniff: (head) => sniffTfjsWeights(head),
  open: openTfjs,
  toNetwork: channelsLastStateDictNetwork,
  write: writeTfjs,
};
