// The PyTorch checkpoint format: zip state dicts and modules (.pt/.pth/.bin), TorchScript
// archives, and the legacy pickle format, read without running any pickled code.
import type { ModelFormat } from '../core/format';
import { PYTORCH_FORMAT, openPytorch, sniffPytorch } from './open';
import { writePytorch } from './writer';
import { stateDictToNetwork } from '../stateDict/build';
import { isPickleStructure, moduleHints } from './moduleHints';

export type { ModuleNode, PickleScalar, PickleStructure, ScriptClass, TensorSlot } from './structure';
export { typeNameOf } from './structure';
export { PYTORCH_FORMAT, openPytorch } from './open';

export const pytorchFormat: ModelFormat = {
  id: PYTORCH_FORMAT,
  description: 'PyTorch checkpoint (.pt/.pth/.bin: zip, TorchScript or legacy)',
  extensions: ['pt', 'pth', 'bin', 'ckpt'],
  sniff: (head) => sniffPytorch(head),
  statesGraph: false,
  open: (path) => openPytorch(path),
  stateDictHints: (cp) => ({ modules: moduleHints(cp), pickled: isPickleStructure(cp.structure) }),
  toNetwork: (cp, opts) => stateDictToNetwork(cp, opts, pytorchFormat.stateDictHints!(cp)),
  write: (cp, changed, target, opts) => writePytorch(cp, changed, target, opts),
};
