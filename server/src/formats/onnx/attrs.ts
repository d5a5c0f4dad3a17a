// Reading node attributes with the defaults the ONNX operator specs give.
import type { AttributeRecord, NodeRecord } from './proto';

export function attr(n: NodeRecord, name: string): AttributeRecord | undefined {
  return n.attributes.find((a) => a.name === name);
}
export function attrInt(n: NodeRecord, name: string, dflt: number): number {
  return attr(n, name)?.i ?? dflt;
}
export function attrFloat(n: NodeRecord, name: string, dflt: number): number {
  return attr(n, name)?.f ?? dflt;
}
export function attrInts(n: NodeRecord, name: string): number[] | undefined {
  const a = attr(n, name);
  return a ? a.ints : undefined;
}
export function attrString(n: NodeRecord, name: string, dflt: string): string {
  return attr(n, name)?.s ?? dflt;
}
export function nodeLabel(n: NodeRecord): string {
  return n.name || n.outputs[0] || n.opType;
}
