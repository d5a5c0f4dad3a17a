// The notes about the graph as a whole: what the builder lists but does not balance, found
// nothing to balance in, or tied.
import type { Tie } from '../../../engine/network';
import type { Checkpoint } from '../../core/checkpoint';
import type { OnnxStructure } from '../reader';

export function graphNotes(cp: Checkpoint, s: OnnxStructure, layerCount: number, ties: readonly Tie[]): string[] {
  const notes: string[] = [];
  const subTensors = cp.tensors.filter((e) => s.records.get(e.name)!.graph !== 'main').length;
  if (subTensors > 0) notes.push(`${subTensors} tensor(s) inside If/Loop/Scan subgraphs are listed but not balanced: the builder does not follow subgraphs`);
  if (layerCount === 0) notes.push('no layer with constant weights (Gemm, MatMul, Conv, ConvTranspose, RNN) was found');
  for (const t of ties) notes.push(`tied ${t.groups.join(' = ')} (${t.reason})`);
  return notes;
}
