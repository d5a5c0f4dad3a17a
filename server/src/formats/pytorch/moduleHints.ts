// The module list of a pickled nn.Module (or TorchScript module), in registration order, as
// hints for the naming conventions: which activation sits between two layers, and whether a
// parent is an nn.Sequential (whose order is its forward order).
import type { Checkpoint } from '../core/checkpoint';
import type { ModuleNode, PickleStructure } from './structure';
import type { ModuleHint } from '../stateDict/conventions';
import { forwardHints } from './forwardCode';

export function isPickleStructure(s: unknown): s is PickleStructure {
  return !!s && typeof s === 'object' && 'container' in s && 'keys' in s;
}

export function moduleHints(cp: Checkpoint): ModuleHint[] {
  if (!isPickleStructure(cp.structure) || !cp.structure.module) return [];
  // TorchScript: the forward code, where the root carries it, says the order and activations.
  if (cp.structure.container === 'torchscript') {
    const fromCode = forwardHints(cp.structure.module);
    if (fromCode) return fromCode;
  }
  const out: ModuleHint[] = [];
  const visit = (m: ModuleNode) => {
    const attrs: Record<string, number> = {};
    for (const [k, v] of Object.entries(m.attributes)) if (typeof v === 'number') attrs[k] = v;
    out.push({ path: m.path, className: m.typeName, attrs });
    m.children.forEach(visit);
  };
  visit(cp.structure.module);
  return out;
}
