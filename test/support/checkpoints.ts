// Helpers the format tests share: a tensor changed in its own dtype, and whether `unzip` is
// there to cross-check archives.
import { execFileSync } from 'node:child_process';
import { loadTensor, type Checkpoint } from '../../server/src/formats/core/checkpoint';
import { bfloat16ToNumber, float16ToNumber, numberToBfloat16, numberToFloat16 } from '../../server/src/tensor/dtype';
import type { Tensor } from '../../server/src/tensor/tensor';

/** Doubles every element of a float tensor, rounding in its own dtype. */
export function doubled(cp: Checkpoint, name: string): Tensor {
  const t = loadTensor(cp.tensors.find((e) => e.name === name)!);
  const data = t.data.slice();
  for (let i = 0; i < data.length; i++) {
    if (t.dtype === 'float16') data[i] = numberToFloat16(2 * float16ToNumber(data[i]));
    else if (t.dtype === 'bfloat16') data[i] = numberToBfloat16(2 * bfloat16ToNumber(data[i]));
    else data[i] = 2 * data[i];
  }
  return { ...t, data };
}

/** Info-ZIP's unzip, when installed (.ci/run installs it), tests archives independently. */
export const hasUnzip = (() => {
  try {
    execFileSync('unzip', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
