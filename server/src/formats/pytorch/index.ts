// The PyTorch checkpoint format: zip state dicts and modules (.pt/.pth/.bin), TorchScript
// archives, and the legacy pickle format, read without running any pickled code.
import type { ModelFormat } from '../registry';
import { PYTORCH_FORMAT, openPytorch, sniffPytorch } from './open';
import { writePytorch } from './writer';

export type { ModuleNode, PickleScalar, PickleStructure, ScriptClass, TensorSlot } from './structure';
export { typeNameOf } from './structure';
export { PYTORCH_FORMAT, openPytorch } from './open';

export const pytorchFormat: ModelFormat = {
  id: PYTORCH_FORMAT,
  description: 'PyTorch checkpoint (.pt/.pth/.bin: zip, TorchScript or legacy)',
  extensions: ['pt', 'pth', 'bin', 'ckpt'],
  sniff: (head) => sniffPytorch(head),
  open: (path) => openPytorch(path),
  write: (cp, changed, target, opts) => writePytorch(cp, changed, target, opts),
};
