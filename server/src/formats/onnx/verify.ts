// Does the balanced model compute what the original did? Both run in onnxruntime on the same
// seeded random inputs; the engine's own forward pass is not trusted for ONNX graphs it only
// partly understands.
import type * as Ort from 'onnxruntime-node';
import { float16ToNumber, numberToFloat16 } from '../../tensor/dtype';
import { normal, rng } from '../../engine/random';
import type { WrittenVerifier } from '../core/format';
import { FileError } from '../../errors/fileError';

export interface OnnxComparison {
  maxAbsolute: number;
  /**
   * Largest |a − b| / max(|a|, |b|, 10% of the largest |a| in that output): relative error, with
   * outputs near zero measured against the output's own scale (float32 rounding is relative to
   * the magnitudes summed, not to a near-cancelled result).
   */
  maxRelative: number;
  samples: number;
  inputs: { name: string; type: string; shape: number[] }[];
  outputs: string[];
}

export interface VerifyOptions {
  samples?: number;
  /** Size given to symbolic or unknown dimensions (batch, sequence length). */
  symbolicDim?: number;
}

type Feeds = Record<string, Ort.Tensor>;

let ortModule: typeof Ort | undefined;
let ortProblem: string | undefined;

/**
 * Set to 1 to run as if onnxruntime-node were missing: for machines where its native library
 * cannot load or crashes (the extension then verifies ONNX files with the engine's forward pass).
 */
export const DISABLE_ONNXRUNTIME_ENV = 'SYNBAL_NO_ONNXRUNTIME';

/**
 * Why onnxruntime cannot be used here (not installed, native library missing for this platform,
 * disabled), or undefined when it loads. Loaded on first use: opening and balancing models never
 * needs its native code. A plain require (not import()) so that bundles resolve it like any
 * external CommonJS module.
 */
export function onnxRuntimeProblem(): string | undefined {
  if (ortModule) return undefined;
  if (ortProblem) return ortProblem;
  if (process.env[DISABLE_ONNXRUNTIME_ENV] === '1') {
    ortProblem = `onnxruntime-node is disabled (${DISABLE_ONNXRUNTIME_ENV}=1)`;
    return ortProblem;
  }
  try {
    ortModule = require('onnxruntime-node') as typeof Ort;
    return undefined;
  } catch (e) {
    const first = ((e as Error).message ?? String(e)).split('\n')[0];
    ortProblem = `onnxruntime-node cannot be loaded on ${process.platform}-${process.arch} (${first})`;
    return ortProblem;
  }
}

export async function onnxRuntime(): Promise<typeof Ort> {
  const problem = onnxRuntimeProblem();
  if (problem || !ortModule) throw new Error(`${problem}; ONNX models cannot be run`);
  return ortModule;
}

const FLOAT_TYPES = new Set(['float32', 'float64', 'float16']);

/** Concrete input shapes and types of a session; refuses models with non-float inputs. */
export function inputSpecs(session: Ort.InferenceSession, path: string, symbolicDim: number): { name: string; type: string; shape: number[] }[] {
  return session.inputMetadata.map((m) => {
    if (!m.isTensor) throw new FileError(path, `input ${m.name} is not a tensor; verification feeds random float tensors only`);
    if (!FLOAT_TYPES.has(m.type)) throw new FileError(path, `input ${m.name} is ${m.type}; verification feeds random float inputs only, so this model cannot be verified automatically`);
    return { name: m.name, type: m.type, shape: m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : symbolicDim)) };
  });
}

export function randomFeeds(ort: typeof Ort, specs: readonly { name: string; type: string; shape: number[] }[], draw: () => number): Feeds {
  const feeds: Feeds = {};
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const values = Float64Array.from({ length: n }, draw);
    const data = s.type === 'float64' ? values : s.type === 'float16' ? Uint16Array.from(values, numberToFloat16) : Float32Array.from(values);
    feeds[s.name] = new ort.Tensor(s.type as 'float32', data as Float32Array, s.shape);
  }
  return feeds;
}

/** An output's values as numbers (float16 decoded), or undefined for non-numeric outputs. */
export function outputValues(t: Ort.Tensor): Float64Array | undefined {
  if (t.type === 'float16') return Float64Array.from(t.data as Uint16Array, float16ToNumber);
  if (t.type === 'string' || t.type === 'bool') return undefined;
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Float64Array.from(t.data, Number);
  return Float64Array.from(t.data as Float32Array);
}

export async function runOnnx(path: string, feeds: Feeds): Promise<Map<string, Float64Array>> {
  const ort = await onnxRuntime();
  const session = await ort.InferenceSession.create(path);
  try {
    const result = await session.run(feeds);
    const out = new Map<string, Float64Array>();
    for (const name of session.outputNames) {
      const v = outputValues(result[name]);
      if (v) out.set(name, v);
    }
    return out;
  } finally {
    await session.release();
  }
}

/** Largest absolute and relative (see OnnxComparison) differences between two sets of outputs. */
export function compareOutputs(a: ReadonlyMap<string, Float64Array>, b: ReadonlyMap<string, Float64Array>): { maxAbsolute: number; maxRelative: number } {
  let maxAbsolute = 0;
  let maxRelative = 0;
  for (const [name, xa] of a) {
    const xb = b.get(name);
    if (!xb || xb.length !== xa.length) throw new Error(`output ${name} differs in size (${xa.length} vs ${xb?.length ?? 'missing'})`);
    let scale = 0;
    for (const v of xa) scale = Math.max(scale, Math.abs(v));
    const floor = 0.1 * scale;
    for (let i = 0; i < xa.length; i++) {
      const d = Math.abs(xa[i] - xb[i]);
      if (Number.isNaN(d) && !(Number.isNaN(xa[i]) && Number.isNaN(xb[i]))) return { maxAbsolute: Infinity, maxRelative: Infinity };
      if (!(d > 0)) continue;
      maxAbsolute = Math.max(maxAbsolute, d);
      maxRelative = Math.max(maxRelative, d / Math.max(Math.abs(xa[i]), Math.abs(xb[i]), floor));
    }
  }
  return { maxAbsolute, maxRelative };
}

/** Runs both models on the same seeded random inputs and compares every output. */
export async function verifyOnnx(originalPath: string, balancedPath: string, seed = 1, opts: VerifyOptions = {}): Promise<OnnxComparison> {
  const ort = await onnxRuntime();
  const load = async (p: string) => {
    try {
      return await ort.InferenceSession.create(p);
    } catch (e) {
      throw new Error(`${p}: onnxruntime cannot load the model (${(e as Error).message})`);
    }
  };
  const a = await load(originalPath);
  try {
    const b = await load(balancedPath);
    try {
      const specs = inputSpecs(a, originalPath, opts.symbolicDim ?? 2);
      const samples = opts.samples ?? 4;
      const draw = normal(rng(seed));
      let maxAbsolute = 0;
      let maxRelative = 0;
      for (let k = 0; k < samples; k++) {
        const feeds = randomFeeds(ort, specs, draw);
        const [ra, rb] = [await a.run(feeds), await b.run(feeds)];
        const va = new Map<string, Float64Array>();
        const vb = new Map<string, Float64Array>();
        for (const name of a.outputNames) {
          const x = outputValues(ra[name]);
          const y = rb[name] ? outputValues(rb[name]) : undefined;
          if (!x) continue;
          if (!y) throw new FileError(balancedPath, `output ${name} is missing or not numeric`);
          va.set(name, x);
          vb.set(name, y);
        }
        const c = compareOutputs(va, vb);
        maxAbsolute = Math.max(maxAbsolute, c.maxAbsolute);
        maxRelative = Math.max(maxRelative, c.maxRelative);
      }
      return { maxAbsolute, maxRelative, samples, inputs: specs, outputs: [...a.outputNames] };
    } finally {
      await b.release();
    }
  } finally {
    await a.release();
  }
}

/** The ONNX format's check of a written copy: both files in onnxruntime. */
export const onnxWrittenVerifier: WrittenVerifier = {
  unavailable: onnxRuntimeProblem,
  async run(original, written) {
    const v = await verifyOnnx(original, written, 1);
    return { method: 'onnxruntime', maxAbsolute: v.maxAbsolute, maxRelative: v.maxRelative, samples: v.samples, steps: 1 };
  },
};
