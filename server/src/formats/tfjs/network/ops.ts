// Reading TF graph nodes: attribute values (base64 strings and lists as the TF.js JSON writes
// them), input references, and the engine activation of each activation op.
import { leakyRelu, other, relu, type Activation } from '../../../engine/activation';


export type Json = Record<string, unknown>;

export const ALIAS_OPS = new Set(['Identity', 'StopGradient', 'Snapshot', 'PreventGradient']);
export const ACTIVATION_OPS = new Set(['Relu', 'Relu6', 'LeakyRelu', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'Softplus', 'Softmax', 'Swish', 'HardSwish', 'Abs', 'Neg']);

const LOOP = 'it is part of a while loop, which the builder does not follow';

/** Ops that stop a scale, with why (the reason shown on the units feeding them). */
const STOP_REASONS: Record<string, string> = {
  Sub: 'it subtracts, which the network does not model (a difference is not a sum of scaled units)',
  Square: 'it is positively homogeneous of degree 2, not 1',
  Sqrt: 'it is not positively homogeneous of degree 1',
  Rsqrt: 'it is not positively homogeneous of degree 1',
  Pow: 'it is not positively homogeneous of degree 1',
  Exp: 'it is not positively homogeneous',
  Log: 'it is not positively homogeneous',
  Reciprocal: 'it is not positively homogeneous of degree 1',
  ClipByValue: 'it clips to a range, which is not positively homogeneous (a ReLU6 or Clip)',
  LRN: 'it normalizes across channels',
  FusedBatchNorm: 'it normalizes with statistics the builder does not fold',
  FusedBatchNormV3: 'it normalizes with statistics the builder does not fold',
  Transpose: 'it moves the channel axis',
  DepthToSpace: 'it moves channels into space',
  SpaceToDepth: 'it moves space into channels',
  Conv2DBackpropInput: 'a transposed convolution is not modelled',
  Enter: LOOP,
  Exit: LOOP,
  Merge: LOOP,
  Switch: LOOP,
  NextIteration: LOOP,
  LoopCond: LOOP,
  ArgMax: 'it returns indices',
  ArgMin: 'it returns indices',
  TopKV2: 'it returns a selection by value',
  NonMaxSuppressionV2: 'it returns a selection by value',
  NonMaxSuppressionV3: 'it returns a selection by value',
  NonMaxSuppressionV5: 'it returns a selection by value',
};

/** Why an op stops a scale, when the catalogue says. */
export function stopReason(op: string, _attr: Json): string | undefined {
  return STOP_REASONS[op];
}

export function attrString(attr: Json, key: string): string | undefined {
  const a = attr[key] as Json | undefined;
  if (!a || typeof a.s !== 'string') return undefined;
  return Buffer.from(a.s, 'base64').toString('utf8');
}

export function attrStrings(attr: Json, key: string): string[] {
  const l = (attr[key] as Json | undefined)?.list as Json | undefined;
  return Array.isArray(l?.s) ? (l.s as string[]).map((x) => Buffer.from(x, 'base64').toString('utf8')) : [];
}

export function attrInts(attr: Json, key: string): number[] | undefined {
  const l = (attr[key] as Json | undefined)?.list as Json | undefined;
  return Array.isArray(l?.i) ? (l.i as unknown[]).map(Number) : undefined;
}

export function attrFloat(attr: Json, key: string): number | undefined {
  const a = attr[key] as Json | undefined;
  return a && a.f !== undefined ? Number(a.f) : undefined;
}

export function attrBool(attr: Json, key: string): boolean {
  const a = attr[key] as Json | undefined;
  return a?.b === true;
}

/** The engine activation of a TF op (Relu is homogeneous; Relu6 and the smooth ones are not). */
export function opActivation(op: string, attr: Json): Activation {
  switch (op) {
    case 'Relu':
      return relu();
    case 'LeakyRelu':
      return leakyRelu(attrFloat(attr, 'alpha') ?? 0.2);
    case 'Relu6':
      return other('relu6');
    case 'Abs':
      return { kind: 'bilu', neg: -1, pos: 1, name: 'abs' };
    case 'Neg':
      return { kind: 'bilu', neg: -1, pos: -1, name: 'neg' };
    default:
      return other(op.toLowerCase());
  }
}

/** "node:1" / "^node" → the producing node's value key. */
export function inputKey(input: string): string | undefined {
  if (input.startsWith('^')) return undefined;
  const [node, idx] = input.split(':');
  return idx && idx !== '0' ? `${node}:${idx}` : node;
}
