// What a verification compares, beyond the graph's outputs as they are. An output that is a
// discontinuous function of the weights (ArgMax, TopK's indices, a Greater/Equal mask,
// NonMaxSuppression) flips on a rounding step; it is judged on the continuous values that feed it,
// added as extra graph outputs to the in-memory model bytes handed to onnxruntime (never on disk).
// For half-precision weights the tolerance comes from the original's own sensitivity: the same
// model with every float16/bfloat16 weight moved by one rounding step.
import { messageField, stringField } from './encode';
import type { GraphView } from './graphView';
import { ONNX_BFLOAT16, ONNX_FLOAT16 } from './dtypes';
import type { ModelRecord } from './proto';

/** Operators whose (listed) outputs jump as the weights move continuously; the inputs they judge. */
const DISCRETE: Record<string, { outputs?: number[]; inputs: number[] }> = {
  ArgMax: { inputs: [0] },
  ArgMin: { inputs: [0] },
  TopK: { outputs: [1], inputs: [0] },
  Hardmax: { inputs: [0] },
  NonMaxSuppression: { inputs: [0, 1] },
  Equal: { inputs: [0, 1] },
  Greater: { inputs: [0, 1] },
  Less: { inputs: [0, 1] },
  GreaterOrEqual: { inputs: [0, 1] },
  LessOrEqual: { inputs: [0, 1] },
  Round: { inputs: [0] },
  Floor: { inputs: [0] },
  Ceil: { inputs: [0] },
  Sign: { inputs: [0] },
};
/** Operators that carry a discrete value on unchanged in kind (through their first inputs). */
const CARRY = new Set(['Cast', 'Identity', 'Squeeze', 'Unsqueeze', 'Reshape', 'Flatten', 'Transpose', 'Concat', 'Gather', 'GatherElements', 'Slice', 'Expand', 'Tile', 'Not', 'And', 'Or', 'Xor', 'OneHot']);

export interface JudgedOutput {
  /** A graph output that is a discontinuous function of the weights. */
  output: string;
  /** The continuous values it was judged on instead (extra outputs of the in-memory model). */
  via: string[];
  /** Elements that differed between the two models (informative only), over all samples. */
  flipped?: number;
  of?: number;
}

/** For each discontinuous graph output, the continuous values feeding it. */
export function discreteOutputs(view: GraphView): JudgedOutput[] {
  const found: JudgedOutput[] = [];
  for (const out of view.graph.outputs) {
    const via = new Set<string>();
    let discrete = false;
    const seen = new Set<string>();
    const walk = (value: string) => {
      if (seen.has(value)) return;
      seen.add(value);
      const p = view.producer.get(value);
      if (!p) return;
      const d = DISCRETE[p.node.opType];
      if (d && (!d.outputs || d.outputs.includes(p.output))) {
        discrete = true;
        for (const i of d.inputs) {
          const v = p.node.inputs[i];
          if (v && !view.isConstant(v)) via.add(v);
        }
      } else if (CARRY.has(p.node.opType)) {
        const data = p.node.opType === 'Concat' || ['And', 'Or', 'Xor'].includes(p.node.opType) ? p.node.inputs : [p.node.inputs[0]];
        for (const v of data) if (v) walk(v);
      }
    };
    walk(out.name);
    if (discrete) found.push({ output: out.name, via: [...via] });
  }
  return found;
}

/**
 * The model with extra graph outputs: a second GraphProto (ModelProto field 7) holding only
 * `output` entries, appended to the bytes. Protobuf merges repeated occurrences of a message
 * field, so readers see one graph with the outputs appended; no type is needed (onnxruntime
 * infers it).
 */
export function withExtraOutputs(bytes: Uint8Array, names: readonly string[]): Uint8Array {
  if (names.length === 0) return bytes;
  const extra = messageField(7, names.map((n) => messageField(12, [stringField(1, n)])));
  const out = new Uint8Array(bytes.length + extra.length);
  out.set(bytes, 0);
  out.set(extra, bytes.length);
  return out;
}

/** Whether the model keeps tensor data in other files (then it must be loaded from its path). */
export function hasExternalData(model: ModelRecord): boolean {
  return model.tensors.some((t) => t.dataLocation === 1 || t.external.length > 0);
}

/** Half-precision tensors whose bytes sit in the file as raw_data. */
export function halfTensors(model: ModelRecord): { start: number; end: number }[] {
  return model.tensors.filter((t) => (t.dataType === ONNX_FLOAT16 || t.dataType === ONNX_BFLOAT16) && t.raw).map((t) => t.raw!);
}

/**
 * A copy of the model with every half-precision weight moved by one unit in the last place
 * (the lowest bit of its 16-bit pattern flipped: up for some, down for others). A balanced copy
 * moves only its scaled weights, each by at most half a step, so the original's change under this
 * perturbation bounds what rounding alone can do to its outputs.
 */
export function perturbedByOneStep(bytes: Uint8Array, ranges: readonly { start: number; end: number }[]): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (const r of ranges) for (let p = r.start; p + 1 < r.end; p += 2) out[p] ^= 1;
  return out;
}
