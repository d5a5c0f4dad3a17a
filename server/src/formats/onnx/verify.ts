// Does the balanced model compute what the original did? Both run in onnxruntime on the same
// seeded random inputs; the engine's own forward pass is not trusted for ONNX graphs it only
// partly understands.
import type * as Ort from 'onnxruntime-node';
import { float16ToNumber, numberToFloat16 } from '../../tensor/dtype';
import { normal, rng } from '../../engine/random';
import { readFileSync } from 'node:fs';
import type { WrittenVerifier } from '../core/format';
import type { Checkpoint } from '../core/checkpoint';
import { FileError } from '../../errors/fileError';
import { VERIFY_LIMIT } from '../../engine/verify';
import { GraphView } from './graphView';
import { onnxStructure, openOnnx } from './reader';
import { chooseInputShapes, metadataProps, metadataPropsOfFile, type DeclaredInput, type InputShapeUsed } from './verifyInputs';
import { discreteOutputs, halfTensors, hasExternalData, perturbedByOneStep, withExtraOutputs, type JudgedOutput } from './verifyOutputs';

export interface OnnxComparison {
  maxAbsolute: number;
  /**
   * Largest |a − b| / max(|a|, |b|, 10% of the largest |a| in that output): relative error, with
   * outputs near zero measured against the output's own scale (float32 rounding is relative to
   * the magnitudes summed, not to a near-cancelled result).
   */
  maxRelative: number;
  samples: number;
  inputs: InputShapeUsed[];
  /** The outputs judged (graph outputs, and the values feeding discontinuous ones). */
  outputs: string[];
  /** Why the check proves nothing (outputs that do not depend on the inputs), when it does not. */
  inconclusive?: string;
  /** Discontinuous graph outputs, judged on the continuous values feeding them. */
  judgedOn?: JudgedOutput[];
  /**
   * Half-precision weights: the original's own change when every such weight moves by one
   * rounding step (same metric as maxRelative), and the limit it sets (twice that, at least VERIFY_LIMIT).
   */
  sensitivity?: number;
  limit?: number;
  notes?: string[];
}

export interface VerifyOptions {
  samples?: number;
  /** Every open dimension this size (the old behaviour; tests of tiny inputs). */
  symbolicDim?: number;
  /** Shapes by input name ('' for a model's only input), as --input-shape gives them. */
  inputShapes?: Readonly<Record<string, number[]>>;
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

/** The session's inputs with their fixed sizes; refuses models with non-float inputs. */
export function declaredInputs(session: Ort.InferenceSession, path: string): DeclaredInput[] {
  return session.inputMetadata.map((m) => {
    if (!m.isTensor) throw new FileError(path, `input ${m.name} is not a tensor; verification feeds random float tensors only`);
    if (!FLOAT_TYPES.has(m.type)) throw new FileError(path, `input ${m.name} is ${m.type}; verification feeds random float inputs only, so this model cannot be verified automatically`);
    return { name: m.name, type: m.type, dims: m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : undefined)) };
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

/**
 * Outputs whose values are the same for every sample, to within VERIFY_LIMIT of their scale (a
 * 1×1 map through InstanceNorm leaves only rounding noise): they do not depend on the inputs.
 */
function constantOutputs(runs: readonly Map<string, Float64Array>[]): string[] {
  const constant: string[] = [];
  for (const [name, first] of runs[0]) {
    let scale = 0;
    for (const r of runs) for (const v of r.get(name)!) scale = Math.max(scale, Math.abs(v));
    const tol = VERIFY_LIMIT * scale;
    if (runs.every((r) => r.get(name)!.every((v, i) => Math.abs(v - first[i]) <= tol || (Number.isNaN(v) && Number.isNaN(first[i]))))) constant.push(name);
  }
  return constant;
}

async function session(ort: typeof Ort, model: string | Uint8Array, path: string): Promise<Ort.InferenceSession> {
  try {
    return typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  } catch (e) {
    throw new Error(`${path}: onnxruntime cannot load the model (${(e as Error).message})`);
  }
}

/**
 * Runs both models on the same seeded random inputs, of realistic sizes (verifyInputs.ts), and
 * compares their continuous outputs: discontinuous ones (ArgMax, masks) are judged on the values
 * feeding them; half-precision weights set the limit from the original's own one-step sensitivity;
 * outputs that are the same for every input make the check inconclusive.
 */
export async function verifyOnnx(originalPath: string, balancedPath: string, seed = 1, opts: VerifyOptions = {}): Promise<OnnxComparison> {
  const ort = await onnxRuntime();
  const notes: string[] = [];
  // The graph (shapes, discontinuous outputs, half tensors) from the reader; a model it cannot read still runs.
  let checkpoint: Checkpoint | undefined;
  let view: GraphView | undefined;
  try {
    checkpoint = openOnnx(originalPath);
    const s = onnxStructure(checkpoint);
    view = new GraphView(originalPath, s, s.model.graph);
  } catch (e) {
    notes.push(`the graph could not be read (${(e as Error).message.split('\n')[0]}): default input sizes, outputs compared as they are`);
  }
  const model = checkpoint ? onnxStructure(checkpoint).model : undefined;
  const editable = model !== undefined && !hasExternalData(model);
  const judged = view && editable ? discreteOutputs(view) : [];
  if (view && !editable) notes.push('the model keeps its weights in external data: run from its files, discontinuous outputs compared as they are');
  const extra = [...new Set(judged.flatMap((j) => j.via))].filter((v) => !view!.outputs.has(v));
  const half = model && editable ? halfTensors(model) : [];
  // The models are handed to onnxruntime as bytes only when they must be edited (extra outputs,
  // perturbed half weights): otherwise from their files, which keeps a copy of each out of memory.
  const inMemory = editable && (extra.length > 0 || half.length > 0);
  const bytesOf = (p: string) => withExtraOutputs(new Uint8Array(readFileSync(p)), extra);
  const originalBytes = inMemory ? bytesOf(originalPath) : undefined;
  const a = await session(ort, originalBytes ?? originalPath, originalPath);
  const sessions = [a];
  try {
    const b = await session(ort, inMemory ? bytesOf(balancedPath) : balancedPath, balancedPath);
    sessions.push(b);
    const p = half.length > 0 ? await session(ort, perturbedByOneStep(originalBytes!, half), originalPath) : undefined;
    if (p) sessions.push(p);
    let specs: InputShapeUsed[];
    try {
      specs = chooseInputShapes(declaredInputs(a, originalPath), {
        given: opts.inputShapes,
        metadata: originalBytes ? metadataProps(originalBytes) : metadataPropsOfFile(originalPath),
        checkpoint,
        path: originalPath,
        symbolicDim: opts.symbolicDim,
      });
    } catch (e) {
      throw e instanceof FileError ? e : new FileError(originalPath, (e as Error).message);
    }
    const samples = opts.samples ?? 4;
    const draw = normal(rng(seed));
    const discrete = new Map(judged.map((j) => [j.output, { ...j, flipped: 0, of: 0 }]));
    let maxAbsolute = 0;
    let maxRelative = 0;
    let sensitivity = 0;
    const runsA: Map<string, Float64Array>[] = [];
    const names = [...a.outputNames].filter((n) => !discrete.has(n));
    for (let k = 0; k < samples; k++) {
      const feeds = randomFeeds(ort, specs, draw);
      const [ra, rb, rp] = [await a.run(feeds), await b.run(feeds), p ? await p.run(feeds) : undefined];
      const va = new Map<string, Float64Array>();
      const vb = new Map<string, Float64Array>();
      const vp = new Map<string, Float64Array>();
      for (const name of names) {
        const x = outputValues(ra[name]);
        const y = rb[name] ? outputValues(rb[name]) : undefined;
        if (!x) continue;
        if (!y) throw new FileError(balancedPath, `output ${name} is missing or not numeric`);
        va.set(name, x);
        vb.set(name, y);
        const z = rp?.[name] ? outputValues(rp[name]) : undefined;
        if (z) vp.set(name, z);
      }
      for (const [name, d] of discrete) {
        const x = outputValues(ra[name]);
        const y = rb[name] ? outputValues(rb[name]) : undefined;
        if (!x || !y || x.length !== y.length) continue;
        d.of += x.length;
        for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) d.flipped++;
      }
      runsA.push(va);
      const c = compareOutputs(va, vb);
      maxAbsolute = Math.max(maxAbsolute, c.maxAbsolute);
      maxRelative = Math.max(maxRelative, c.maxRelative);
      if (p) sensitivity = Math.max(sensitivity, compareOutputs(va, vp).maxRelative);
    }
    const outputs = [...runsA[0].keys()];
    let inconclusive: string | undefined;
    if (outputs.length === 0) inconclusive = 'the model has no continuous output to compare';
    else if (samples < 2) inconclusive = 'one random input cannot show that the outputs depend on it';
    else {
      const constant = constantOutputs(runsA);
      if (constant.length === outputs.length) {
        const shapes = specs.map((s) => `${s.name} ${s.shape.join('×')}`).join(', ');
        inconclusive = `every output compared (${outputs.join(', ')}) is the same for all ${samples} random inputs at ${shapes}: the check cannot tell a wrong balance from a right one (give realistic sizes with --input-shape)`;
      } else if (constant.length > 0) notes.push(`output${constant.length > 1 ? 's' : ''} ${constant.join(', ')} did not change with the input`);
    }
    return {
      maxAbsolute,
      maxRelative,
      samples,
      inputs: specs,
      outputs,
      ...(inconclusive ? { inconclusive } : {}),
      ...(discrete.size ? { judgedOn: [...discrete.values()] } : {}),
      ...(p ? { sensitivity, limit: Math.max(VERIFY_LIMIT, 2 * sensitivity) } : {}),
      ...(notes.length ? { notes } : {}),
    };
  } finally {
    for (const s of sessions) await s.release();
  }
}

/** The ONNX format's check of a written copy: both files in onnxruntime. */
export const onnxWrittenVerifier: WrittenVerifier = {
  unavailable: onnxRuntimeProblem,
  async run(original, written, opts) {
    const v = await verifyOnnx(original, written, 1, { inputShapes: opts?.inputShapes });
    const { maxAbsolute, maxRelative, samples, inputs, inconclusive, judgedOn, sensitivity, limit, notes } = v;
    return {
      method: 'onnxruntime',
      maxAbsolute,
      maxRelative,
      samples,
      steps: 1,
      inputs,
      ...(inconclusive ? { inconclusive } : {}),
      ...(judgedOn ? { judgedOn } : {}),
      ...(limit !== undefined ? { limit, limitBasis: `twice the original's own change (${sensitivity!.toExponential(2)}) when every half-precision weight moves by one rounding step` } : {}),
      ...(notes ? { notes } : {}),
    };
  },
};
