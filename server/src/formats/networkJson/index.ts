// The JSON network description: groups, tensors with inline values, connections and ties —
// the engine's Network written out. Small hand-written or generated examples use it.
import { bipu, identity, leakyRelu, other, prelu, relu, type Activation } from '../../engine/activation';
import type { Connection, Network, Tie, UnitGroup } from '../../engine/network';
import type { DType } from '../../tensor/dtype';
import { makeTensor, numel, tensorValues, type Tensor } from '../../tensor/tensor';
import { readFileSync } from 'node:fs';
import { stampOf, type Checkpoint } from '../core/checkpoint';
import type { ModelFormat } from '../core/format';
import { writeFileSafely } from '../core/safeWrite';
import { FileError, fail } from '../../errors/fileError';

export const NETWORK_JSON_FORMAT = 'synbal-network';

interface TensorJson {
  name: string;
  dtype?: DType;
  shape: number[];
  values: number[];
}

interface GroupJson extends Omit<UnitGroup, 'activation'> {
  activation?: string | Activation;
}

export interface NetworkJson {
  format: typeof NETWORK_JSON_FORMAT;
  name: string;
  groups: GroupJson[];
  tensors: TensorJson[];
  connections: Connection[];
  ties?: Tie[];
}

const DTYPES: DType[] = ['float64', 'float32', 'float16', 'bfloat16'];

/** "relu", "identity", "leaky_relu:0.1", "prelu:0.1,0.2", "bipu:2", or any other name (not homogeneous). */
export function parseActivation(spec: string | Activation): Activation {
  if (typeof spec !== 'string') return spec;
  const [name, arg] = spec.split(':');
  switch (name.toLowerCase()) {
    case 'relu':
      return relu();
    case 'identity':
    case 'linear':
      return identity();
    case 'leaky_relu':
    case 'leakyrelu':
      return leakyRelu(arg === undefined ? 0.01 : Number(arg));
    case 'prelu':
      return prelu((arg ?? '').split(',').map(Number));
    case 'bipu':
      return bipu(Number(arg ?? 2));
    default:
      return other(name);
  }
}


export function isNetworkJson(text: string): boolean {
  return /^\s*\{/.test(text) && text.includes(`"${NETWORK_JSON_FORMAT}"`);
}

export function parseNetworkJson(text: string, file: string): Network {
  let doc: NetworkJson;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    fail(file, `not valid JSON (${(e as Error).message})`);
  }
  if (!doc || doc.format !== NETWORK_JSON_FORMAT) fail(file, `not a network description: "format" must be "${NETWORK_JSON_FORMAT}"`);
  if (!Array.isArray(doc.groups) || !Array.isArray(doc.tensors) || !Array.isArray(doc.connections)) {
    fail(file, 'a network description needs "groups", "tensors" and "connections" arrays');
  }
  const tensors: Tensor[] = doc.tensors.map((t, i) => {
    if (typeof t?.name !== 'string') fail(file, `tensor ${i} has no name`);
    const dtype = t.dtype ?? 'float64';
    if (!DTYPES.includes(dtype)) fail(file, `tensor ${t.name}: unknown dtype "${dtype}" (expected ${DTYPES.join(', ')})`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d > 0)) fail(file, `tensor ${t.name}: shape must be a list of positive integers`);
    if (!Array.isArray(t.values) || t.values.length !== numel(t.shape)) {
      fail(file, `tensor ${t.name}: shape [${t.shape.join(', ')}] needs ${numel(t.shape)} values, found ${Array.isArray(t.values) ? t.values.length : 'none'}`);
    }
    if (!t.values.every((v) => typeof v === 'number' && Number.isFinite(v))) fail(file, `tensor ${t.name}: values must be finite numbers`);
    return makeTensor(t.name, dtype, t.shape, t.values);
  });
  const groups: UnitGroup[] = doc.groups.map((g, i) => {
    if (typeof g?.name !== 'string') fail(file, `group ${i} has no name`);
    if (!['input', 'hidden', 'output'].includes(g.role)) fail(file, `group ${g.name}: role must be input, hidden or output`);
    const { activation, ...rest } = g;
    return activation === undefined ? rest : { ...rest, activation: parseActivation(activation) };
  });
  return { name: doc.name ?? file, groups, tensors, connections: doc.connections, ties: doc.ties };
}

function activationJson(a: Activation | undefined): string | Activation | undefined {
  if (!a) return undefined;
  if (a.kind === 'bilu' && a.name === 'relu') return 'relu';
  if (a.kind === 'bilu' && a.name === 'identity') return 'identity';
  if (a.kind === 'other') return a.name;
  return a;
}

export function networkToJson(net: Network): string {
  const doc: NetworkJson = {
    format: NETWORK_JSON_FORMAT,
    name: net.name,
    groups: net.groups.map((g) => {
      const { activation, ...rest } = g;
      const act = activationJson(activation);
      return act === undefined ? rest : { ...rest, activation: act };
    }),
    tensors: net.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], values: Array.from(tensorValues(t)) })),
    connections: net.connections,
    ...(net.ties ? { ties: net.ties } : {}),
  };
  return JSON.stringify(doc, null, 1) + '\n';
}

export const networkJsonFormat: ModelFormat = {
  id: NETWORK_JSON_FORMAT,
  description: 'Synaptic Balance network description (JSON)',
  extensions: ['json'],
  statesGraph: true,
  sniff: (head) => isNetworkJson(head.toString('utf8')),
  toNetwork: (cp) => ({ network: cp.network!, notes: [] }),
  open(path): Checkpoint {
    const network = parseNetworkJson(readFileSync(path, 'utf8'), path);
    // The tensors live inline in the JSON: entries carry their decoded values.
    const tensors = network.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], file: path, offset: 0, byteLength: 0, encoding: 'json', decoded: t }));
    return { path, format: NETWORK_JSON_FORMAT, tensors, files: [stampOf(path)], warnings: [], network };
  },
  write(cp, changed, target, opts) {
    const net = cp.network!;
    const out = { ...net, tensors: net.tensors.map((t) => changed.get(t.name) ?? t) };
    writeFileSafely(target, Buffer.from(networkToJson(out), 'utf8'), {
      backup: opts?.backup,
      verify: (tmp) => {
        const back = parseNetworkJson(readFileSync(tmp, 'utf8'), target);
        if (back.tensors.length !== out.tensors.length) throw new FileError(target, `the written file does not read back`);
      },
    });
    return [target];
  },
};
