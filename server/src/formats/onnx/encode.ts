// Writing ONNX protobuf messages from scratch: small models with the encodings real exporters
// rarely produce (unpacked float_data, float16 in int32_data, subgraphs, external data), so that
// tests can cover them without Python. Not a general ONNX writer: fields are emitted in order.
import { encodeVarint } from './wire';

const tag = (num: number, wire: number) => encodeVarint(num * 8 + wire);

export function varintField(num: number, value: number): Buffer {
  // Negative int64 values take ten bytes in two's complement.
  if (value < 0) {
    const big = (1n << 64n) + BigInt(value);
    const out: number[] = [];
    let v = big;
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    return Buffer.concat([tag(num, 0), Buffer.from(out)]);
  }
  return Buffer.concat([tag(num, 0), encodeVarint(value)]);
}

export function bytesField(num: number, bytes: Buffer): Buffer {
  return Buffer.concat([tag(num, 2), encodeVarint(bytes.length), bytes]);
}

export function stringField(num: number, s: string): Buffer {
  return bytesField(num, Buffer.from(s, 'utf8'));
}

export function messageField(num: number, parts: readonly Buffer[]): Buffer {
  return bytesField(num, Buffer.concat(parts));
}

export function floatField(num: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return Buffer.concat([tag(num, 5), b]);
}

export function packedFloats(num: number, values: readonly number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return bytesField(num, b);
}

export function packedDoubles(num: number, values: readonly number[]): Buffer {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeDoubleLE(v, i * 8));
  return bytesField(num, b);
}

export function packedVarints(num: number, values: readonly number[]): Buffer {
  return bytesField(num, Buffer.concat(values.map((v) => encodeVarint(v))));
}

export interface TensorSpec {
  name: string;
  dataType: number;
  dims: readonly number[];
  raw?: Buffer;
  floats?: readonly number[];
  doubles?: readonly number[];
  /** int32_data (int8…int32, bool, and float16/bfloat16 bit patterns). */
  int32s?: readonly number[];
  int64s?: readonly number[];
  /** Emit repeated fields one element per tag instead of packed. */
  unpacked?: boolean;
  external?: { location: string; offset?: number; length?: number };
}

export function tensorProto(t: TensorSpec): Buffer {
  const parts: Buffer[] = [];
  for (const d of t.dims) parts.push(varintField(1, d));
  parts.push(varintField(2, t.dataType));
  if (t.floats) parts.push(t.unpacked ? Buffer.concat(t.floats.map((v) => floatField(4, v))) : packedFloats(4, t.floats));
  if (t.int32s) parts.push(t.unpacked ? Buffer.concat(t.int32s.map((v) => varintField(5, v))) : packedVarints(5, t.int32s));
  if (t.int64s) parts.push(t.unpacked ? Buffer.concat(t.int64s.map((v) => varintField(7, v))) : Buffer.concat(t.int64s.map((v) => varintField(7, v))));
  parts.push(stringField(8, t.name));
  if (t.raw) parts.push(bytesField(9, t.raw));
  if (t.doubles) parts.push(packedDoubles(10, t.doubles));
  if (t.external) {
    const entry = (k: string, v: string) => messageField(13, [stringField(1, k), stringField(2, v)]);
    parts.push(entry('location', t.external.location));
    if (t.external.offset !== undefined) parts.push(entry('offset', String(t.external.offset)));
    if (t.external.length !== undefined) parts.push(entry('length', String(t.external.length)));
    parts.push(varintField(14, 1));
  }
  return Buffer.concat(parts);
}

export type AttrValue =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { strings: readonly string[] }
  | { t: TensorSpec }
  | { g: Buffer };

/** AttributeProto.type codes. */
const ATTR_TYPE = { f: 1, i: 2, s: 3, t: 4, g: 5, floats: 6, ints: 7, strings: 8 } as const;

export function attribute(name: string, v: AttrValue): Buffer {
  const parts = [stringField(1, name)];
  if ('f' in v) parts.push(floatField(2, v.f));
  if ('i' in v) parts.push(varintField(3, v.i));
  if ('s' in v) parts.push(stringField(4, v.s));
  if ('t' in v) parts.push(messageField(5, [tensorProto(v.t)]));
  if ('g' in v) parts.push(bytesField(6, v.g));
  if ('floats' in v) parts.push(packedFloats(7, v.floats));
  if ('ints' in v) parts.push(...v.ints.map((x) => varintField(8, x)));
  if ('strings' in v) parts.push(...v.strings.map((x) => stringField(9, x)));
  const kind = Object.keys(v)[0] as keyof typeof ATTR_TYPE;
  parts.push(varintField(20, ATTR_TYPE[kind]));
  return Buffer.concat(parts);
}

export interface NodeSpec {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  attrs?: Record<string, AttrValue>;
  domain?: string;
}

export function nodeProto(n: NodeSpec): Buffer {
  const parts: Buffer[] = [];
  for (const i of n.inputs) parts.push(stringField(1, i));
  for (const o of n.outputs) parts.push(stringField(2, o));
  if (n.name) parts.push(stringField(3, n.name));
  parts.push(stringField(4, n.op));
  for (const [k, v] of Object.entries(n.attrs ?? {})) parts.push(messageField(5, [attribute(k, v)]));
  if (n.domain) parts.push(stringField(7, n.domain));
  return Buffer.concat(parts);
}

/** ValueInfoProto of a tensor: dims are sizes, or names for symbolic ones. */
export function valueInfo(name: string, elemType: number, dims: readonly (number | string)[]): Buffer {
  const dimMsgs = dims.map((d) => messageField(1, [typeof d === 'number' ? varintField(1, d) : stringField(2, d)]));
  const tensorType = Buffer.concat([varintField(1, elemType), messageField(2, dimMsgs)]);
  return Buffer.concat([stringField(1, name), messageField(2, [messageField(1, [tensorType])])]);
}

export interface GraphSpec {
  name?: string;
  nodes: readonly NodeSpec[];
  initializers?: readonly TensorSpec[];
  inputs: readonly Buffer[];
  outputs: readonly Buffer[];
}

export function graphProto(g: GraphSpec): Buffer {
  return Buffer.concat([
    ...g.nodes.map((n) => messageField(1, [nodeProto(n)])),
    stringField(2, g.name ?? 'graph'),
    ...(g.initializers ?? []).map((t) => messageField(5, [tensorProto(t)])),
    ...g.inputs.map((v) => bytesField(11, v)),
    ...g.outputs.map((v) => bytesField(12, v)),
  ]);
}

export function modelProto(graph: GraphSpec, opset = 13, irVersion = 7): Buffer {
  return Buffer.concat([
    varintField(1, irVersion),
    stringField(2, 'synbal-test'),
    bytesField(7, graphProto(graph)),
    messageField(8, [stringField(1, ''), varintField(2, opset)]),
  ]);
}

/** Little-endian float32 bytes (raw_data). */
export function f32(values: readonly number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return b;
}
