// The order of checkpoints in a folder: by the step number in the file name when there is one
// (`ckpt_step_1200.pt`, `epoch=3-step=1200.ckpt` → the last number), else by modification time.
import { basename, extname } from 'node:path';

/** The last run of digits in the file name without its extension, or undefined. */
export function stepNumberOf(file: string): number | undefined {
  const name = basename(file, extname(file));
  const m = name.match(/(\d+)(?!.*\d)/);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

export interface Ordered {
  file: string;
  stepNumber?: number;
  mtimeMs: number;
}

export function compareCheckpoints(a: Ordered, b: Ordered): number {
  if (a.stepNumber !== undefined && b.stepNumber !== undefined && a.stepNumber !== b.stepNumber) return a.stepNumber - b.stepNumber;
  return a.mtimeMs - b.mtimeMs || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
}
