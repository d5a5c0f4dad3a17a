// The products as one small ONNX graph per upload: each block's matrix is an initializer kept
// in the upload file (external data), its cost |w|^p computed in float64 by Cast and Mul/Abs
// (folded into a constant when the session is created), and two MatMuls give C·x and Cᵀ·y.
import { basename } from 'node:path';
import { modelProto, valueInfo, type NodeSpec, type TensorSpec } from '../formats/onnx/encode';
import type { UploadBlock } from './hostProtocol';

const FLOAT = 1;
const DOUBLE = 11;

export interface GraphNames {
  x: string;
  y: string;
  row: string;
  col: string;
  /** Shapes of the inputs (vectors laid out as the MatMul wants them). */
  xShape: [number, number];
  yShape: [number, number];
}

export function productNames(b: UploadBlock): GraphNames {
  // Stored as C ([target][source]): row = C·x, col = y·C. Stored as M = Cᵀ: row = x·M, col = M·y.
  const nT = b.transposed ? b.cols : b.rows;
  const nS = b.transposed ? b.rows : b.cols;
  return {
    x: `x${b.id}`,
    y: `y${b.id}`,
    row: `row${b.id}`,
    col: `col${b.id}`,
    xShape: b.transposed ? [1, nS] : [nS, 1],
    yShape: b.transposed ? [nT, 1] : [1, nT],
  };
}

/** The model bytes; its initializers point into `dataFile` (which must sit beside the model). */
export function productsModel(blocks: readonly UploadBlock[], dataFile: string): Buffer {
  const nodes: NodeSpec[] = [];
  const initializers: TensorSpec[] = [];
  const inputs: Buffer[] = [];
  const outputs: Buffer[] = [];
  for (const b of blocks) {
    const w = `w${b.id}`;
    const bytes = b.rows * b.cols * (b.dtype === 'float32' ? 4 : 8);
    initializers.push({ name: w, dataType: b.dtype === 'float32' ? FLOAT : DOUBLE, dims: [b.rows, b.cols], external: { location: basename(dataFile), offset: b.offset, length: bytes } });
    // Cast first: the cost is formed in float64, as the CPU kernel does.
    let m = w;
    if (b.dtype === 'float32') {
      m = `w64_${b.id}`;
      nodes.push({ op: 'Cast', inputs: [w], outputs: [m], attrs: { to: { i: DOUBLE } } });
    }
    let c = m;
    if (b.kind === 'weights') {
      c = `c${b.id}`;
      nodes.push(b.p === 2 ? { op: 'Mul', inputs: [m, m], outputs: [c] } : { op: 'Abs', inputs: [m], outputs: [c] });
    }
    const n = productNames(b);
    nodes.push({ op: 'MatMul', inputs: b.transposed ? [n.x, c] : [c, n.x], outputs: [n.row] });
    nodes.push({ op: 'MatMul', inputs: b.transposed ? [c, n.y] : [n.y, c], outputs: [n.col] });
    inputs.push(valueInfo(n.x, DOUBLE, n.xShape), valueInfo(n.y, DOUBLE, n.yShape));
    const nT = n.yShape[0] * n.yShape[1];
    const nS = n.xShape[0] * n.xShape[1];
    outputs.push(valueInfo(n.row, DOUBLE, b.transposed ? [1, nT] : [nT, 1]), valueInfo(n.col, DOUBLE, b.transposed ? [nS, 1] : [1, nS]));
  }
  return modelProto({ name: 'synbal-products', nodes, initializers, inputs, outputs });
}
