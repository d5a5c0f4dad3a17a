// Hand-built TF.js graph models for the builder's tests: nodes as the TF.js converter writes
// them (attributes base64 and stringly typed), weights of uneven scale in one shard, written as
// model.json + .bin, and run by @tensorflow/tfjs's own GraphModel (tf.io.fromMemory) so a
// balanced copy can be compared with the original by the format's own runtime.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from './scratch';

type Json = Record<string, unknown>;

export const attr = {
  s: (v: string): Json => ({ s: Buffer.from(v).toString('base64') }),
  ss: (v: string[]): Json => ({ list: { s: v.map((x) => Buffer.from(x).toString('base64')) } }),
  ints: (v: number[]): Json => ({ list: { i: v.map(String) } }),
  i: (v: number): Json => ({ i: String(v) }),
  f: (v: number): Json => ({ f: v }),
  b: (v: boolean): Json => ({ b: v }),
  type: (t = 'DT_FLOAT'): Json => ({ type: t }),
};

const NHWC = { data_format: attr.s('NHWC') };

function shapeAttr(dims: number[]): Json {
  return { dim: dims.map((d) => ({ size: String(d) })) };
}

export class GraphBuilder {
  readonly nodes: Json[] = [];
  readonly weights: { name: string; shape: number[]; dtype: 'float32' | 'int32'; data: Float32Array | Int32Array }[] = [];
  private seed: number;

  constructor(seed = 1) {
    this.seed = seed;
  }

  private rand(): number {
    this.seed = (this.seed * 1103515245 + 12345) % 2147483648;
    return this.seed / 2147483648;
  }

  input(name: string, dims: number[]): string {
    this.nodes.push({ name, op: 'Placeholder', attr: { shape: { shape: shapeAttr([-1, ...dims]) }, dtype: attr.type() } });
    return name;
  }

  /** A float constant: the given values, or random ones of uneven scale per last-axis channel. */
  constant(name: string, shape: number[], values?: number[]): string {
    const n = shape.reduce((a, b) => a * b, 1);
    const C = shape[shape.length - 1] ?? 1;
    const scales = Array.from({ length: C }, () => 0.1 + 3 * this.rand());
    const data = Float32Array.from({ length: n }, (_, i) => values?.[i] ?? (this.rand() - 0.45) * scales[i % C]);
    this.weights.push({ name, shape, dtype: 'float32', data });
    this.nodes.push({ name, op: 'Const', attr: { value: { tensor: { dtype: 'DT_FLOAT', tensorShape: shapeAttr(shape) } }, dtype: attr.type() } });
    return name;
  }

  ints(name: string, shape: number[], values: number[]): string {
    this.weights.push({ name, shape, dtype: 'int32', data: Int32Array.from(values) });
    this.nodes.push({ name, op: 'Const', attr: { value: { tensor: { dtype: 'DT_INT32', tensorShape: shapeAttr(shape) } }, dtype: attr.type('DT_INT32') } });
    return name;
  }

  op(name: string, op: string, inputs: string[], attrs: Json = {}): string {
    this.nodes.push({ name, op, input: inputs, attr: { T: attr.type(), ...attrs } });
    return name;
  }

  /** Conv2D (or depthwise) with a fresh kernel, optional bias and fused activation. */
  conv(name: string, x: string, k: number, cin: number, cout: number, opts: { stride?: number; padding?: 'SAME' | 'VALID'; depthwise?: boolean; fused?: string[] } = {}): string {
    const kernel = this.constant(`${name}/kernel`, opts.depthwise ? [k, k, cin, 1] : [k, k, cin, cout]);
    const s = opts.stride ?? 1;
    const base = { strides: attr.ints([1, s, s, 1]), padding: attr.s(opts.padding ?? 'SAME'), dilations: attr.ints([1, 1, 1, 1]), ...NHWC };
    if (!opts.fused) return this.op(name, opts.depthwise ? 'DepthwiseConv2dNative' : 'Conv2D', [x, kernel], base);
    const bias = this.constant(`${name}/bias`, [opts.depthwise ? cin : cout]);
    const extra = opts.fused.filter((f) => f === 'Prelu').map(() => this.constant(`${name}/alpha`, [opts.depthwise ? cin : cout], Array.from({ length: opts.depthwise ? cin : cout }, (_, i) => 0.05 + 0.1 * i)));
    return this.op(name, opts.depthwise ? 'FusedDepthwiseConv2dNative' : '_FusedConv2D', [x, kernel, bias, ...extra], {
      ...base, fused_ops: attr.ss(['BiasAdd', ...opts.fused]), num_args: attr.i(1 + extra.length), epsilon: attr.f(0),
    });
  }

  pool(name: string, op: 'MaxPool' | 'AvgPool', x: string, k: number, s = k, padding: 'SAME' | 'VALID' = 'VALID'): string {
    return this.op(name, op, [x], { ksize: attr.ints([1, k, k, 1]), strides: attr.ints([1, s, s, 1]), padding: attr.s(padding), ...NHWC });
  }

  dense(name: string, x: string, fin: number, fout: number, fused: string[] = ['BiasAdd']): string {
    const w = this.constant(`${name}/kernel`, [fin, fout]);
    const b = this.constant(`${name}/bias`, [fout]);
    return this.op(name, '_FusedMatMul', [x, w, b], { transpose_a: attr.b(false), transpose_b: attr.b(false), fused_ops: attr.ss(fused), num_args: attr.i(1), epsilon: attr.f(0) });
  }

  json(name: string): Json {
    return {
      format: 'graph-model',
      generatedBy: '2.15.0',
      convertedBy: 'test/support/tfjsGraphModels.ts',
      modelTopology: { node: this.nodes, library: {}, versions: { producer: 1 } },
      weightsManifest: [{ paths: [`${name}.bin`], weights: this.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype })) }],
    };
  }

  /** model.json + one shard in a fresh folder; returns the model path. */
  write(name: string): string {
    const dir = scratchDir('synbal-graph-');
    writeFileSync(join(dir, `${name}.bin`), Buffer.concat(this.weights.map((w) => Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength))));
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(this.json(name)));
    return join(dir, `${name}.json`);
  }
}

/** Runs a graph model file (model.json + its shards) with TF.js's own GraphModel. */
export async function runGraphModel(path: string, inputs: Record<string, { shape: number[]; data: Float32Array }>): Promise<Float32Array[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tf = require('@tensorflow/tfjs') as typeof import('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  const j = JSON.parse(readFileSync(path, 'utf8')) as { modelTopology: Json; weightsManifest: { paths: string[]; weights: import('@tensorflow/tfjs').io.WeightsManifestEntry[] }[] };
  const dir = join(path, '..');
  const specs = j.weightsManifest.flatMap((g) => g.weights);
  const data = Buffer.concat(j.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dir, p)))));
  const model = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: j.modelTopology, weightSpecs: specs, weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength), format: 'graph-model' } as never));
  const feed: Record<string, import('@tensorflow/tfjs').Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) feed[k] = tf.tensor(v.data, [1, ...v.shape]);
  const out = model.execute(feed);
  const list = Array.isArray(out) ? out : [out];
  const res = list.map((t) => t.dataSync() as Float32Array);
  tf.dispose([...list, ...Object.values(feed)]);
  model.dispose();
  return res;
}

/** Seeded inputs. */
export function randomInput(n: number, seed = 3): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 2 - 1;
  });
}
