// A checkpoint's per-layer costs (the server's synbal/checkpointCosts answer) as log layers.
import type { CheckpointCostsResult } from '../../../../server/src/contract/requests';
import { decodeBase64Floats, type LayerRecord } from '../../../../server/src/contract/balanceLog';

export function layersOfCosts(r: CheckpointCostsResult): LayerRecord[] {
  return r.layers.map((l) => {
    const inCost = decodeBase64Floats(l.in, 'float32');
    const outCost = decodeBase64Floats(l.out, 'float32');
    if (inCost.length !== outCost.length) throw new Error(`${r.fileUri}: layer ${l.name} has ${inCost.length} IN costs but ${outCost.length} OUT costs`);
    return { name: l.name, in: inCost, out: outCost, weightNorm: l.weightNorm ?? NaN };
  });
}
