// A TF.js graph model as a network. Phases: planNodes (→ NodePlan) → traceNodes (→ GraphTrace)
// → graphNetwork (→ BuiltNetwork), where the values nobody reads are the outputs.
import type { BuiltNetwork } from '../../core/format';
import type { Checkpoint } from '../../core/checkpoint';
import type { TfjsGraphNode, TfjsGraphStructure } from '../read';
import { groupsOf } from './graphDraft';
import { planNodes } from './graphPlan';
import { traceNodes, type GraphTrace } from './graphTrace';
import { FileError, asFileError } from '../../../errors/fileError';

/**
 * A TF.js graph model's ops as a network: Conv2D, DepthwiseConv2dNative, MatMul, BiasAdd,
 * activations, fused ops, AddV2 residuals, and the ops that pass a scale through
 * (graphPass.ts); any other op is a barrier that keeps the units feeding it fixed.
 */
export function tfjsGraphToNetwork(cp: Checkpoint): BuiltNetwork {
  const s = cp.structure as TfjsGraphStructure | undefined;
  if (s?.kind !== 'tfjs-graph') throw new FileError(cp.path, `not a TensorFlow.js graph model`);
  try {
    const plan = planNodes(s);
    const entries = new Map(cp.tensors.map((t) => [t.name, t]));
    const trace = traceNodes(plan.order, plan.uses, entries, s.tfjs.ints ?? {}, [`topology from the TensorFlow.js graph model (${plan.order.length} nodes)`, ...plan.notes]);
    return graphNetwork(cp.path, plan.order, trace);
  } catch (e) {
    throw asFileError(cp.path, e);
  }
}

function graphNetwork(name: string, order: readonly TfjsGraphNode[], trace: GraphTrace): BuiltNetwork {
  const { draft, values, uses } = trace;
  const notes = [...draft.notes];
  const groups = new Map(draft.groups.map((g) => [g.name, { ...g }]));
  for (const [g, visible] of draft.visible) groups.get(g)!.visible = visible;
  // Values nobody reads are the outputs.
  const outs = order.filter((n) => !uses.get(n.name)).flatMap((n) => groupsOf(values.get(n.name) ?? { kind: 'free', name: n.name }));
  if (!outs.length) notes.push('no output of the graph is computed by the part of it the network models');
  for (const o of outs) {
    const g = groups.get(o)!;
    if (g.role === 'input') continue;
    g.role = 'output';
    delete g.visible;
    if (g.activation?.kind === 'other') {
      notes.push(`output ${g.name}: its ${g.activation.name} is left out of forward passes (outputs are never rescaled, so it does not matter to balancing)`);
      delete g.activation;
    }
  }
  if (draft.caveats.size) notes.push(`forward passes of this network are not exact: ${[...draft.caveats].join('; ')}`);
  return { network: { name, groups: [...groups.values()], tensors: [...draft.tensors.values()], connections: draft.connections }, notes };
}
