// Reading TF graph nodes: attribute values (base64 strings and lists as the TF.js JSON writes
// them), input references, and the engine activation of each activation op.
import { leakyRelu, other, relu, type Activation } from '../../../engine/activation';

export type Json = Record<string, unknown>;

export const ALIAS_OPS = new Set(['Identity', 'StopGradient', 'Snapshot', 'PreventGradient']);
export const ACTIVATION_OPS = new Set(['Relu', 'Relu6', 'LeakyRelu', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'Softplus', 'Softmax', 'Swish', 'HardSwish']);

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
