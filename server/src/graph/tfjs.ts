// TensorFlow.js models as the engine's network. A layers model carries a Keras topology, so it
// is built by the Keras builder (the TF.js reader leaves a KerasStructure on the checkpoint);
// a graph model's TF ops are built here.
import { identity, leakyRelu, other, relu, type Activation } from '../engine/activation';
import type { Connection, Network, UnitGroup } from '../engine/network';
import { isFloatDType, loadTensor, type Checkpoint, type TensorEntry } from '../formats/checkpoint';
import { convOutput, known, padAfter, padBefore, type Dim } from '../formats/keras/geometry';
import { TFJS_FORMAT, type TfjsGraphNode, type TfjsGraphStructure, type TfjsStructure } from '../formats/tfjs/index';
import type { Tensor } from '../tensor/tensor';
import { KERAS_H5_FORMAT } from '../formats/keras/structure';
import type { BuiltNetwork } from './build';
import { kerasToNetwork } from '../formats/keras/network';

/** The network of a TF.js checkpoint: layers models through the Keras builder, graph models op by op. */
export function tfjsToNetwork(cp: Checkpoint): BuiltNetwork {
  const s = cp.structure as TfjsStructure | undefined;
  if (cp.format !== TFJS_FORMAT || !s) throw new Error(`${cp.path}: not a TensorFlow.js model checkpoint (format ${cp.format})`);
  if (s.kind === 'keras') {
    // The Keras builder asks for a Keras checkpoint; the tensors and structure are the same.
    const built = kerasToNetwork({ ...cp, format: KERAS_H5_FORMAT });
    return { network: built.network, notes: built.notes.map((n) => n.replace(/^topology from the Keras /, 'topology from the TensorFlow.js layers model: Keras ')) };
  }
  return tfjsGraphToNetwork(cp);
}


type Json = Record<string, unknown>;

/** A graph value as the builder sees it; shapes without the batch axis, channels last. */
type GValue =
  | { kind: 'group'; group: string; shape: Dim[]; stage: 'linear' | 'biased' | 'activated'; owner: string }
  | { kind: 'const'; tensor: string };

const ALIAS_OPS = new Set(['Identity', 'StopGradient', 'Snapshot', 'PreventGradient']);
const ACTIVATION_OPS = new Set(['Relu', 'Relu6', 'LeakyRelu', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'Softplus', 'Softmax', 'Swish', 'HardSwish']);

function attrString(attr: Json, key: string): string | undefined {
  const a = attr[key] as Json | undefined;
  if (!a || typeof a.s !== 'string') return undefined;
  return Buffer.from(a.s, 'base64').toString('utf8');
}

function attrStrings(attr: Json, key: string): string[] {
  const l = (attr[key] as Json | undefined)?.list as Json | undefined;
  return Array.isArray(l?.s) ? (l.s as string[]).map((x) => Buffer.from(x, 'base64').toString('utf8')) : [];
}

function attrInts(attr: Json, key: string): number[] | undefined {
  const l = (attr[key] as Json | undefined)?.list as Json | undefined;
  return Array.isArray(l?.i) ? (l.i as unknown[]).map(Number) : undefined;
}

function attrFloat(attr: Json, key: string): number | undefined {
  const a = attr[key] as Json | undefined;
  return a && a.f !== undefined ? Number(a.f) : undefined;
}

function attrBool(attr: Json, key: string): boolean {
  const a = attr[key] as Json | undefined;
  return a?.b === true;
}

/** The engine activation of a TF op (Relu is homogeneous; Relu6 and the smooth ones are not). */
function opActivation(op: string, attr: Json): Activation {
  switch (op) {
    case 'Relu':
      return relu();
    case 'LeakyRelu':
      return leakyRelu(attrFloat(attr, 'alpha') ?? 0.2);
    case 'Relu6':
      return other('relu6');
    default:
      return other(op.toLowerCase());
  }
}

/** "node:1" / "^node" → the producing node's value key. */
function inputKey(input: string): string | undefined {
  if (input.startsWith('^')) return undefined;
  const [node, idx] = input.split(':');
  return idx && idx !== '0' ? `${node}:${idx}` : node;
}

class TfjsGraph {
  private readonly groups: UnitGroup[] = [];
  private readonly connections: Connection[] = [];
  private readonly tensors = new Map<string, Tensor>();
  private readonly values = new Map<string, GValue>();
  private readonly uses = new Map<string, number>();
  private readonly notes: string[] = [];
  private readonly entries: Map<string, TensorEntry>;
  private readonly byName = new Map<string, UnitGroup>();

  constructor(
    private readonly cp: Checkpoint,
    private readonly s: TfjsGraphStructure,
  ) {
    this.entries = new Map(cp.tensors.map((t) => [t.name, t]));
  }

  build(): { network: Network; notes: string[] } {
    const nodes = this.order();
    for (const n of nodes) for (const i of n.input) {
      const k = inputKey(i);
      if (k) this.uses.set(k, (this.uses.get(k) ?? 0) + 1);
    }
    this.notes.push(`topology from the TensorFlow.js graph model (${nodes.length} nodes)`);
    for (const n of nodes) this.node(n);
    // Values nobody reads are the outputs.
    const outs = nodes.filter((n) => !this.uses.get(n.name) && this.values.get(n.name)?.kind === 'group');
    if (!outs.length) throw new Error('the graph has no output computed from its inputs');
    for (const n of outs) {
      const g = this.byName.get((this.values.get(n.name) as { group: string }).group)!;
      g.role = 'output';
      if (g.activation?.kind === 'other') {
        this.notes.push(`output ${g.name}: its ${g.activation.name} is left out of forward passes (outputs are never rescaled, so it does not matter to balancing)`);
        delete g.activation;
      }
    }
    return { network: { name: this.cp.path, groups: this.groups, tensors: [...this.tensors.values()], connections: this.connections }, notes: this.notes };
  }

  private order(): TfjsGraphNode[] {
    const byName = new Map(this.s.nodes.map((n) => [n.name, n]));
    const state = new Map<string, 1 | 2>();
    const out: TfjsGraphNode[] = [];
    const visit = (n: TfjsGraphNode) => {
      const st = state.get(n.name);
      if (st === 2) return;
      if (st === 1) throw new Error(`the graph has a cycle through node ${n.name}`);
      state.set(n.name, 1);
      for (const i of n.input) {
        const k = inputKey(i);
        if (!k) continue;
        const src = byName.get(k.split(':')[0]);
        if (!src) throw new Error(`node ${n.name} reads "${i}", which is not a node of the graph`);
        visit(src);
      }
      state.set(n.name, 2);
      out.push(n);
    };
    for (const n of this.s.nodes) visit(n);
    return out;
  }

  private input(n: TfjsGraphNode, i: number): GValue {
    const k = inputKey(n.input[i] ?? '');
    const v = k ? this.values.get(k) : undefined;
    if (!v) throw new Error(`node ${n.name} (${n.op}): input ${i} (${n.input[i]}) has no value this builder understands`);
    return v;
  }

  private groupInput(n: TfjsGraphNode, i: number): Extract<GValue, { kind: 'group' }> {
    const v = this.input(n, i);
    if (v.kind !== 'group') throw new Error(`node ${n.name} (${n.op}): input ${i} is a constant, not a computed value`);
    return v;
  }

  private weight(n: TfjsGraphNode, i: number): Tensor {
    const v = this.input(n, i);
    if (v.kind !== 'const') throw new Error(`node ${n.name} (${n.op}): input ${i} is not a constant weight`);
    const entry = this.entries.get(v.tensor);
    if (!entry) throw new Error(`node ${n.name}: the weights manifest has no ${v.tensor}`);
    if (!isFloatDType(entry.dtype)) throw new Error(`node ${n.name}: weight ${v.tensor} is ${entry.dtype}`);
    let t = this.tensors.get(v.tensor);
    if (!t) {
      t = loadTensor(entry);
      this.tensors.set(v.tensor, t);
    }
    return t;
  }

  private newGroup(name: string, size: number, shape: Dim[]): UnitGroup {
    const g: UnitGroup = { name, size, role: 'hidden', activation: identity() };
    const spatial = shape.slice(0, -1);
    if (spatial.length && known(spatial)) g.spatial = spatial;
    else if (spatial.length) throw new Error(`the spatial size at node ${name} is unknown (state the input's shape)`);
    this.groups.push(g);
    this.byName.set(name, g);
    return g;
  }

  /** The group a fused or separate op may still change: made by `owner`'s chain, read once. */
  private foldable(v: GValue, key: string): v is Extract<GValue, { kind: 'group' }> {
    return v.kind === 'group' && (this.uses.get(key) ?? 0) === 1 && this.byName.get(v.group)?.role === 'hidden';
  }

  private addBias(n: TfjsGraphNode, v: Extract<GValue, { kind: 'group' }>, bias: Tensor): GValue {
    const size = this.byName.get(v.group)!.size;
    if (bias.shape.length !== 1 || bias.shape[0] !== size) throw new Error(`node ${n.name}: bias of shape [${bias.shape.join(', ')}] for ${size} channels`);
    this.connections.push({ tensor: bias.name, kind: 'bias', to: v.group, target: { axis: 0 } });
    return { ...v, stage: 'biased', owner: n.name };
  }

  private activate(n: TfjsGraphNode, v: Extract<GValue, { kind: 'group' }>, a: Activation, key: string): GValue {
    const g = this.byName.get(v.group)!;
    if (v.stage !== 'activated' && this.foldable(v, key)) {
      g.activation = a;
      g.activationSource = `${n.name} (${n.op})`;
      return { ...v, stage: 'activated', owner: n.name };
    }
    // Read elsewhere too, or already activated: a group of its own, joined by a skip.
    const own = this.newGroup(n.name, g.size, v.shape);
    own.activation = a;
    own.activationSource = `${n.name} (${n.op})`;
    this.connections.push({ kind: 'skip', from: v.group, to: n.name, target: { axis: 0 } });
    return { kind: 'group', group: n.name, shape: v.shape, stage: 'activated', owner: n.name };
  }

  private matmul(n: TfjsGraphNode): Extract<GValue, { kind: 'group' }> {
    const x = this.groupInput(n, 0);
    if (attrBool(n.attr, 'transpose_a')) throw new Error(`node ${n.name}: MatMul with transpose_a is not supported`);
    const w = this.weight(n, 1);
    if (w.shape.length !== 2) throw new Error(`node ${n.name}: MatMul weight of shape [${w.shape.join(', ')}]`);
    const tb = attrBool(n.attr, 'transpose_b');
    const [inAxis, outAxis] = tb ? [1, 0] : [0, 1];
    const src = this.byName.get(x.group)!;
    if (x.shape.length !== 1) throw new Error(`node ${n.name}: MatMul over a ${x.shape.length}-d value (a Reshape is not supported)`);
    if (w.shape[inAxis] !== src.size) throw new Error(`node ${n.name}: MatMul weight [${w.shape.join(', ')}] over ${src.size} features`);
    const out = w.shape[outAxis];
    this.newGroup(n.name, out, [out]);
    this.connections.push({ tensor: w.name, kind: 'dense', from: x.group, to: n.name, target: { axis: outAxis }, source: { axis: inAxis } });
    return { kind: 'group', group: n.name, shape: [out], stage: 'linear', owner: n.name };
  }

  private conv(n: TfjsGraphNode, depthwise: boolean): Extract<GValue, { kind: 'group' }> {
    const x = this.groupInput(n, 0);
    const k = this.weight(n, 1);
    const fmt = attrString(n.attr, 'data_format') ?? 'NHWC';
    if (fmt !== 'NHWC') throw new Error(`node ${n.name}: data_format ${fmt} is not supported (only NHWC)`);
    if (k.shape.length !== 4 || x.shape.length !== 3) throw new Error(`node ${n.name}: a 2-d convolution needs a [h, w, in, out] kernel and an [H, W, C] input`);
    const src = this.byName.get(x.group)!;
    if (k.shape[2] !== src.size) throw new Error(`node ${n.name}: kernel [${k.shape.join(', ')}] over ${src.size} channels`);
    const strides = attrInts(n.attr, 'strides') ?? [1, 1, 1, 1];
    const dil = attrInts(n.attr, 'dilations') ?? [1, 1, 1, 1];
    const padding = (attrString(n.attr, 'padding') ?? 'VALID').toLowerCase();
    if (padding !== 'same' && padding !== 'valid') throw new Error(`node ${n.name}: padding ${padding.toUpperCase()} is not supported`);
    const stride = [strides[1], strides[2]];
    const dilation = [dil[1], dil[2]];
    const kernel = [k.shape[0], k.shape[1]];
    const spatial = x.shape.slice(0, 2);
    const out = spatial.map((d, i) => convOutput(d, kernel[i], stride[i], dilation[i], padding));
    const geometry: Connection['geometry'] = { stride };
    if (dilation.some((d) => d !== 1)) geometry.dilation = dilation;
    if (padding === 'same') {
      geometry.pad = spatial.map((d, i) => padBefore(d, kernel[i], stride[i], dilation[i], padding) ?? 0);
      geometry.padEnd = spatial.map((d, i) => padAfter(d, kernel[i], stride[i], dilation[i], padding) ?? 0);
    }
    if (depthwise) {
      const C = k.shape[2];
      if (k.shape[3] !== 1) throw new Error(`node ${n.name}: depthwise channel multiplier ${k.shape[3]} is not supported (only 1)`);
      this.newGroup(n.name, C, [...out, C]);
      this.connections.push({ tensor: k.name, kind: 'conv', from: x.group, to: n.name, target: { axis: 2 }, source: { axis: 3 }, groups: C, geometry });
      return { kind: 'group', group: n.name, shape: [...out, C], stage: 'linear', owner: n.name };
    }
    const C = k.shape[3];
    this.newGroup(n.name, C, [...out, C]);
    this.connections.push({ tensor: k.name, kind: 'conv', from: x.group, to: n.name, target: { axis: 3 }, source: { axis: 2 }, geometry });
    return { kind: 'group', group: n.name, shape: [...out, C], stage: 'linear', owner: n.name };
  }

  private node(n: TfjsGraphNode): void {
    const op = n.op;
    let v: GValue | undefined;
    if (op === 'Const') {
      v = { kind: 'const', tensor: n.name };
    } else if (op === 'Placeholder') {
      const dims = ((((n.attr.shape as Json | undefined)?.shape as Json | undefined)?.dim as Json[] | undefined) ?? []).map((d) => Number(d.size ?? -1));
      const shape: Dim[] = dims.slice(1).map((d) => (d >= 0 ? d : null));
      if (!shape.length || shape[shape.length - 1] === null) throw new Error(`input ${n.name} has no known channel count (shape [${dims.join(', ')}])`);
      const g = this.newGroup(n.name, shape[shape.length - 1] as number, shape);
      g.role = 'input';
      delete g.activation;
      v = { kind: 'group', group: n.name, shape, stage: 'activated', owner: n.name };
    } else if (ALIAS_OPS.has(op)) {
      v = this.input(n, 0);
      const k = inputKey(n.input[0])!;
      // Passing the value on: its readers are this node's readers.
      this.uses.set(k, (this.uses.get(k) ?? 0) - 1 + (this.uses.get(n.name) ?? 0));
    } else if (op === 'MatMul' || op === '_FusedMatMul' || op === 'Conv2D' || op === '_FusedConv2D' || op === 'DepthwiseConv2dNative' || op === 'FusedDepthwiseConv2dNative') {
      let g = op.includes('MatMul') ? this.matmul(n) : this.conv(n, op.includes('Depthwise'));
      if (op.startsWith('_Fused') || op.startsWith('FusedDepthwise')) {
        const fused = attrStrings(n.attr, 'fused_ops');
        let arg = 2;
        for (const f of fused) {
          if (f === 'BiasAdd' || f === 'Add' || f === 'AddV2') g = this.addBias(n, g, this.weight(n, arg++)) as typeof g;
          else if (ACTIVATION_OPS.has(f)) {
            const grp = this.byName.get(g.group)!;
            grp.activation = opActivation(f, n.attr);
            grp.activationSource = `${n.name} (${op} fused ${f})`;
            g = { ...g, stage: 'activated' };
          } else throw new Error(`node ${n.name}: fused op ${f} is not supported`);
        }
      }
      v = g;
    } else if (op === 'BiasAdd' || op === 'Add' || op === 'AddV2') {
      const a = this.input(n, 0);
      const b = this.input(n, 1);
      const key = inputKey(n.input[0])!;
      if (a.kind === 'group' && b.kind === 'const' && a.stage === 'linear' && this.foldable(a, key)) {
        v = this.addBias(n, a, this.weight(n, 1));
      } else if (op !== 'BiasAdd' && a.kind === 'group' && b.kind === 'group') {
        const size = this.byName.get(a.group)!.size;
        if (this.byName.get(b.group)!.size !== size) throw new Error(`node ${n.name}: adds values of ${size} and ${this.byName.get(b.group)!.size} channels`);
        this.newGroup(n.name, size, a.shape);
        for (const x of [a, b]) this.connections.push({ kind: 'skip', from: x.group, to: n.name, target: { axis: 0 } });
        v = { kind: 'group', group: n.name, shape: a.shape, stage: 'linear', owner: n.name };
        this.notes.push(`${n.name}: a residual ${op}; its inputs share their scales`);
      } else throw new Error(`node ${n.name} (${op}): this form of addition is not supported`);
    } else if (ACTIVATION_OPS.has(op)) {
      v = this.activate(n, this.groupInput(n, 0), opActivation(op, n.attr), inputKey(n.input[0])!);
    } else if (op === 'NoOp') {
      return;
    } else {
      throw new Error(`node ${n.name}: op ${op} is not supported by the graph-model builder`);
    }
    this.values.set(n.name, v);
  }
}

/** A TF.js graph model's ops as a network: Conv2D, DepthwiseConv2dNative, MatMul, BiasAdd, activations, fused ops, AddV2 residuals. */
export function tfjsGraphToNetwork(cp: Checkpoint): BuiltNetwork {
  const s = cp.structure as TfjsGraphStructure | undefined;
  if (s?.kind !== 'tfjs-graph') throw new Error(`${cp.path}: not a TensorFlow.js graph model`);
  try {
    return new TfjsGraph(cp, s).build();
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(cp.path) ? msg : `${cp.path}: ${msg}`);
  }
}
