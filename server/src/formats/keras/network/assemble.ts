// Phase 5: the traced draft as the engine's Network. Groups the model's outputs read become
// outputs; a group an opaque layer reads is marked visible (its units stay fixed).
import type { Network, UnitGroup } from '../../../engine/network';
import { forwardKnown } from '../activations';
import type { TensorRef } from '../config';
import { caveatNotes, droppedOutputActivationNote, unmodeledOutputNote } from './notes';
import { valueOf, type Trace } from './trace';

export function assembleNetwork(name: string, trace: Trace, outputs: readonly TensorRef[], leadingNotes: readonly string[]): { network: Network; notes: string[] } {
  const { draft } = trace;
  const outputNotes: string[] = [];
  const groups = new Map<string, UnitGroup>(draft.groups.map((g) => [g.name, { ...g }]));
  for (const r of outputs) {
    const v = valueOf(trace.values, r);
    const names = v.kind === 'group' ? [v.group] : v.kind === 'parts' ? v.parts.map((p) => p.group) : [];
    if (!names.length) outputNotes.push(unmodeledOutputNote(r.layer));
    for (const n of names) {
      const g = groups.get(n);
      if (!g) throw new Error(`internal: no group ${n}`);
      if (g.role === 'input') continue;
      g.role = 'output';
      if (g.activation && !forwardKnown(g.activation)) {
        outputNotes.push(droppedOutputActivationNote(g.name, g.activation.kind === 'other' ? g.activation.name : 'activation'));
        delete g.activation;
      }
    }
  }
  for (const slot of draft.slots.values()) if (slot.visible.length) groups.get(slot.group.name)!.visible = slot.visible;
  const network: Network = { name, groups: [...groups.values()], tensors: [...draft.tensors.values()], connections: draft.connections };
  return { network, notes: [...leadingNotes, ...draft.notes, ...outputNotes, ...caveatNotes(draft.caveats)] };
}
