// The network model the engine balances: groups of units, and weight tensors that connect
// them. Weights stay tensors; a connection says which tensor axis indexes which units.
import type { Tensor } from '../tensor/tensor';
import type { Activation } from './activation';

export type GroupRole = 'input' | 'hidden' | 'output';

/** Units held fixed (Λ = 1) for a stated reason, though their group is hidden. */
export interface VisibleUnits {
  reason: string;
  /** Unit indices in the group; all units when absent. */
  units?: readonly number[];
}

export interface UnitGroup {
  name: string;
  /** Number of scalable units (for a conv layer: output channels). */
  size: number;
  role: GroupRole;
  /** Required for hidden groups; optional for outputs (used only by forward passes). */
  activation?: Activation;
  /** Where the activation was learnt: a graph node, a manifest entry, code. */
  activationSource?: string;
  /** Hidden units that must stay visible, with the reason (e.g. they feed a Sigmoid). */
  visible?: readonly VisibleUnits[];
  /** Spatial extent of each unit's feature map ([H, W] or [L]); absent for dense units. */
  spatial?: readonly number[];
  /**
   * Inference BatchNorm applied to the summed input before the activation:
   * γ·(x − μ)/√(var + eps) + β. Its μ and β scale with the unit: the network lists them as
   * bias connections too (μ unregularized), which forward passes read through this instead.
   */
  batchnorm?: BatchNorm;
  /** Pooling after the activation (max or average over windows): it passes a positive scale through. */
  pool?: Pool;
}

export interface Pool {
  kind: 'max' | 'avg';
  kernel: readonly number[];
  /** Default: the kernel. */
  stride?: readonly number[];
  /** The feature map size before pooling; `spatial` is the size after. */
  inputSpatial: readonly number[];
}

export interface BatchNorm {
  mean: string;
  variance: string;
  gamma?: string;
  beta?: string;
  eps: number;
}

/**
 * How indices along one tensor axis map to units of a group:
 * unit = floor((index - start) / inner) mod group.size, for index in [start, start + length).
 * `inner` > 1 describes a channel-major flatten (C×H×W → C·H·W with inner = H·W).
 */
export interface AxisMap {
  axis: number;
  start?: number;
  length?: number;
  inner?: number;
}

export interface ConvGeometry {
  stride?: readonly number[];
  /** Zero padding before each spatial axis (the same after, unless padEnd says otherwise). */
  pad?: readonly number[];
  padEnd?: readonly number[];
  dilation?: readonly number[];
}

export interface Connection {
  /** Name for listings; defaults to the tensor's name. */
  name?: string;
  /** Name of the weight tensor in Network.tensors (none for a skip). */
  tensor?: string;
  /**
   * A 'skip' adds the source's values unit by unit (a residual Add: y = x + F(x)); it has no
   * weights, so its two ends must keep one scale: compiling ties them.
   */
  kind: 'dense' | 'conv' | 'bias' | 'skip';
  to: string;
  target: AxisMap;
  /** Source group; absent for a bias (an edge from the constant unit). */
  from?: string;
  source?: AxisMap;
  /** Axes held at one index (e.g. the direction axis of an ONNX RNN weight). */
  select?: readonly { axis: number; index: number }[];
  /** Grouped convolution: source channels are split into this many groups. */
  groups?: number;
  /** Spatial axes of a conv kernel in tensor order; default: the remaining axes in order. */
  kernelAxes?: readonly number[];
  geometry?: ConvGeometry;
  /** Recurrent edge: reads the source's value from the previous time step. */
  delay?: 0 | 1;
  /** False for tensors that scale with a unit but are not weights (BatchNorm running mean). */
  regularized?: boolean;
}

/** Units at the same index in each listed group share one scale (e.g. joined by a residual Add). */
export interface Tie {
  groups: readonly string[];
  reason: string;
}

export interface Network {
  name: string;
  groups: UnitGroup[];
  tensors: Tensor[];
  connections: Connection[];
  ties?: Tie[];
}

export function groupIndex(net: Network): Map<string, number> {
  const m = new Map<string, number>();
  net.groups.forEach((g, i) => {
    if (m.has(g.name)) throw new Error(`network ${net.name}: two groups are named "${g.name}"`);
    m.set(g.name, i);
  });
  return m;
}

export function tensorIndex(net: Network): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  for (const t of net.tensors) {
    if (m.has(t.name)) throw new Error(`network ${net.name}: two tensors are named "${t.name}"`);
    m.set(t.name, t);
  }
  return m;
}

export function parameterCount(net: Network): number {
  let n = 0;
  for (const t of net.tensors) n += t.data.length;
  return n;
}
