// The values the ONNX network builder's phases hand each other. A group's identity (GroupInfo) is
// fixed when it is created; what later phases learn about it travels separately (GroupTrace,
// Finding), so that each phase's result says what that phase found.
import type { Activation } from '../../../engine/activation';
import type { AxisMap, Connection, ConvGeometry, UnitGroup } from '../../../engine/network';
import type { ChannelState } from './passThrough';
import type { ConstView } from '../graphView';
import type { NodeRecord } from '../proto';

export type LayerKind = 'Gemm' | 'MatMul' | 'Conv' | 'ConvTranspose' | 'RNN';

/** A node with constant weights, whose outputs are units of their own. */
export interface Layer {
  readonly node: NodeRecord;
  readonly kind: LayerKind;
  readonly dataInput: number;
  readonly weight: ConstView;
  /** Effective weight axes: the one indexing this layer's units and the one its inputs contract with. */
  readonly targetAxis: number;
  readonly sourceAxis: number;
  /** Units the contracted axis of the data holds (for a grouped conv: all input channels). */
  readonly inputUnits: number;
  readonly convGroups: number;
}

/** The layers by node, in graph order. */
export type Layers = ReadonlyMap<NodeRecord, Layer>;

/** A group of units as created. `group` is its first form; the last phase returns the final one. */
export interface GroupInfo {
  readonly group: UnitGroup;
  /** The node whose output the group's units are: its layer, or the Mul/normalization of an affine group. */
  readonly origin?: NodeRecord;
  /** Set for groups whose activation the layer states itself (RNN). */
  readonly ownActivation?: { activation: Activation; source: string };
}

/** Each layer's groups (an RNN's by direction), in graph order. */
export type LayerGroups = ReadonlyMap<Layer, readonly GroupInfo[]>;

/** A reason a group's units stay visible. A group lists its reasons in the order found, once each. */
export interface Finding {
  group: GroupInfo;
  reason: string;
}

export interface PathEnd {
  activation?: Activation;
  /** The activation nodes met on the way, for activationSource. */
  nodes: string[];
  /** The residual Add/Sub where the path joined another group's values. */
  joinedAt?: string;
}

/** A connection on effective (view) axes, before it is mapped onto the stored tensors. */
export interface ViewConnection {
  kind: Connection['kind'];
  to: GroupInfo;
  from?: GroupInfo;
  target: AxisMap;
  source?: AxisMap;
  select?: { axis: number; index: number }[];
  groups?: number;
  geometry?: ConvGeometry;
  delay?: 0 | 1;
  regularized?: boolean;
  label?: string;
}

/** A view connection, the node that reads its weights, and the view it reads them through. */
export interface PendingConnection {
  node: NodeRecord;
  conn: ViewConnection;
  view: ConstView;
}

/** Where one group's values went when followed forward (trace.ts). */
export interface GroupTrace {
  group: GroupInfo;
  /** Reasons found on the way, in order. */
  reasons: string[];
  paths: PathEnd[];
  reachesLayer: boolean;
  reachesOutput: boolean;
  /** Its values join another group's at a residual Add (and go on as those). */
  joined: boolean;
  /** Layers that read the values as their data, in the order met. */
  arrivals: { layer: Layer; state: ChannelState }[];
  /** Adds/Subs where the values meet another computed value, in the order met. */
  merges: { node: NodeRecord; input: number; state: ChannelState }[];
  /** Constants met on the way that must scale with the units (biases). */
  biases: PendingConnection[];
  /** Values the units were followed into. */
  traced: Set<string>;
}
