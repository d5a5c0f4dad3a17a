// Large model files written at bench time (never committed): a float32 MLP as safetensors and
// as ONNX (Gemm + Relu), streamed to disk so that writing a gigabyte needs little memory.
import { closeSync, openSync, writeSync } from 'node:fs';

export interface MlpFileSpec {
  sizes: number[];
  seed: number;
  /** Uniform weights in [−scale, scale]. */
  scale?: number;
}

/** xorshift32 uniform floats: fast enough to fill a gigabyte in seconds. */
function uniform(seed: number, scale: number): (out: Float32Array) => void {
  let s = seed >>> 0 || 1;
  return (out) => {
    for (let i = 0; i < out.length; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      out[i] = ((s / 4294967296) * 2 - 1) * scale;
    }
  };
}

interface TensorPlan {
  name: string;
  shape: number[];
}

function plan(sizes: number[]): TensorPlan[] {
  const t: TensorPlan[] = [];
  for (let l = 1; l < sizes.length; l++) {
    // nn.Sequential names (Linear at even indices, ReLU between): a chain the reader can trust.
    t.push({ name: `${2 * (l - 1)}.weight`, shape: [sizes[l], sizes[l - 1]] });
    t.push({ name: `${2 * (l - 1)}.bias`, shape: [sizes[l]] });
  }
  return t;
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const CHUNK = 1 << 20;

function writeTensorData(fd: number, n: number, fill: (out: Float32Array) => void): void {
  const buf = new Float32Array(Math.min(n, CHUNK));
  for (let done = 0; done < n; done += buf.length) {
    const part = buf.subarray(0, Math.min(buf.length, n - done));
    fill(part);
    const bytes = Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    writeSync(fd, bytes);
  }
}

/** safetensors: u64 header length, JSON header, raw little-endian data in header order. */
export function writeMlpSafetensors(path: string, spec: MlpFileSpec): number {
  const tensors = plan(spec.sizes);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    const bytes = count(t.shape) * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const fd = openSync(path, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json, 'utf8'));
    const fill = uniform(spec.seed, spec.scale ?? 0.05);
    for (const t of tensors) writeTensorData(fd, count(t.shape), fill);
  } finally {
    closeSync(fd);
  }
  return 8 + json.length + off;
}

// --- A minimal protobuf encoder for the ONNX messages this needs. ---

type Field = Buffer | { length: number; write: (fd: number) => void };

function varint(v: number): Buffer {
  const out: number[] = [];
  let n = BigInt(v);
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  return Buffer.from(out);
}

const tag = (field: number, wire: number) => varint((field << 3) | wire);
const vField = (field: number, v: number) => Buffer.concat([tag(field, 0), varint(v)]);
const sField = (field: number, s: string) => bytesField(field, Buffer.from(s, 'utf8'));
function bytesField(field: number, b: Buffer): Buffer {
  return Buffer.concat([tag(field, 2), varint(b.length), b]);
}

/** A length-delimited field whose content is a list of parts (some streamed). */
function message(field: number, parts: Field[]): Field[] {
  const length = parts.reduce((s, p) => s + p.length, 0);
  return [Buffer.concat([tag(field, 2), varint(length)]), ...parts];
}

function valueInfo(field: number, name: string, dims: (number | string)[]): Field[] {
  const dimMsgs = dims.flatMap((d) => message(1, [typeof d === 'number' ? vField(1, d) : sField(2, d)]));
  const shape = message(2, dimMsgs);
  const tensorType = message(1, [vField(1, 1), ...shape]);
  const type = message(2, tensorType);
  return message(field, [sField(1, name), ...type]);
}

/** ONNX IR 7, opset 13: x → Gemm(transB) → Relu → … → Gemm → y, float32 initializers in raw_data. */
export function writeMlpOnnx(path: string, spec: MlpFileSpec): number {
  const tensors = plan(spec.sizes);
  const fill = uniform(spec.seed, spec.scale ?? 0.05);
  const nodes: Field[] = [];
  const L = spec.sizes.length - 1;
  let input = 'x';
  for (let l = 1; l <= L; l++) {
    const gemmOut = l === L ? 'y' : `gemm${l}`;
    const attr = message(5, [sField(1, 'transB'), vField(3, 1), vField(20, 2)]);
    nodes.push(...message(1, [sField(1, input), sField(1, `${2 * (l - 1)}.weight`), sField(1, `${2 * (l - 1)}.bias`), sField(2, gemmOut), sField(3, `Gemm_${l}`), sField(4, 'Gemm'), ...attr]));
    if (l < L) {
      nodes.push(...message(1, [sField(1, gemmOut), sField(2, `relu${l}`), sField(3, `Relu_${l}`), sField(4, 'Relu')]));
      input = `relu${l}`;
    }
  }
  const inits: Field[] = tensors.flatMap((t) => {
    const n = count(t.shape);
    const raw: Field = { length: n * 4, write: (fd: number) => writeTensorData(fd, n, fill) };
    return message(5, [...t.shape.map((d) => vField(1, d)), vField(2, 1), sField(8, t.name), Buffer.concat([tag(9, 2), varint(n * 4)]), raw]);
  });
  const graph = message(7, [
    ...nodes,
    sField(2, 'mlp'),
    ...inits,
    ...valueInfo(11, 'x', ['batch', spec.sizes[0]]),
    ...valueInfo(12, 'y', ['batch', spec.sizes[L]]),
  ]);
  const model: Field[] = [vField(1, 7), sField(2, 'synbal-bench'), ...graph, ...message(8, [sField(1, ''), vField(2, 13)])];
  const fd = openSync(path, 'w');
  let total = 0;
  try {
    for (const part of model) {
      if (Buffer.isBuffer(part)) writeSync(fd, part);
      else part.write(fd);
      total += part.length;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}
