// The ONNX ModelFormat: sniffed from the first protobuf fields, not from the file name.
import type { ModelFormat } from '../core/format';
import { ONNX_FORMAT_ID, openOnnx } from './reader';
import { writeOnnx } from './writer';
import { onnxToNetwork } from './network';
import { onnxWrittenVerifier } from './verify';

/** ModelProto fields and their wire types (1 ir_version … 7 graph, 8 opset_import, …). */
const MODEL_FIELDS: Record<number, number> = { 1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2 };
/** Fields that may be large and run past the sniffed head. */
const LARGE = new Set([6, 7, 8, 14, 20, 25]);
/** Text fields that must be short, readable strings in a real model's head. */
const TEXT = new Set([2, 3, 4]);

function varintAt(buf: Buffer, pos: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = 0; i < 8 && pos + i < buf.length; i++) {
    const b = buf[pos + i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if (b < 0x80) return { value, next: pos + i + 1 };
  }
  return undefined;
}

/**
 * Walks the ModelProto fields in the head: each must be a known field with its wire type, text
 * fields must be UTF-8, and the model must start with ir_version and reach (or be inside) the graph.
 */
export function looksLikeOnnx(head: Buffer): boolean {
  if (head.length < 2 || head[0] !== 0x08) return false;
  let pos = 0;
  let sawIr = false;
  let sawGraph = false;
  while (pos < head.length) {
    const tag = varintAt(head, pos);
    if (!tag) return sawIr;
    const num = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    if (MODEL_FIELDS[num] !== wire) return false;
    pos = tag.next;
    const v = varintAt(head, pos);
    if (!v) return sawIr && (sawGraph || LARGE.has(num));
    if (num === 1) {
      if (v.value < 1 || v.value > 100) return false;
      sawIr = true;
    }
    if (wire === 0) {
      pos = v.next;
      continue;
    }
    const end = v.next + v.value;
    if (num === 7) sawGraph = true;
    if (end > head.length) return sawIr && LARGE.has(num);
    if (TEXT.has(num)) {
      const text = head.subarray(v.next, end);
      if (!Buffer.from(text.toString('utf8'), 'utf8').equals(text)) return false;
    }
    pos = end;
  }
  return sawIr && sawGraph;
}

export const onnxFormat: ModelFormat = {
  id: ONNX_FORMAT_ID,
  description: 'ONNX model (.onnx)',
  extensions: ['onnx'],
  sniff: (head) => looksLikeOnnx(head),
  statesGraph: true,
  open: (path) => openOnnx(path),
  toNetwork: (cp) => onnxToNetwork(cp),
  write: writeOnnx,
  verifyWritten: onnxWrittenVerifier,
};
