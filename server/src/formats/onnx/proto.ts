// The parts of an ONNX ModelProto the tool needs, with the byte offset of every tensor's data
// and of every enclosing length prefix (so a writer can patch in place, or change a length and
// fix the messages around it). Unknown fields are stepped over, as protobuf readers do.
import { ByteSource, OnnxFormatError, FIXED32, FIXED64, LEN, VARINT, forEachField, readVarint, type Field } from './wire';

/** A length-delimited message inside the file: its length prefix and payload. */
export interface Frame {
  lenPos: number;
  lenSize: number;
  start: number;
  end: number;
  /** Index of the enclosing frame; -1 for a field of the top-level ModelProto. */
  parent: number;
}

/** Where the values of one repeated scalar field sit: a packed run or one element. */
export interface Segment {
  packed: boolean;
  /** The field's tag, for rewriting a packed run whole. */
  tagPos: number;
  lenPos: number;
  lenSize: number;
  start: number;
  end: number;
}

export interface ExternalEntry {
  key: string;
  value: string;
  /** The value string's length prefix and payload, and the entry's own frame. */
  valueLenPos: number;
  valueLenSize: number;
  valueStart: number;
  valueEnd: number;
  frame: number;
}

export interface TensorRecord {
  name: string;
  dataType: number;
  dims: number[];
  /** The TensorProto's own frame. */
  frame: number;
  raw?: { start: number; end: number };
  /** Typed data fields by field number (4 float, 5 int32, 7 int64, 10 double, 11 uint64, 6 string). */
  typed: Map<number, Segment[]>;
  external: ExternalEntry[];
  dataLocation: number;
  /** Where the tensor sits: "initializer", "Constant node X", "attribute A of node X", inside which graph. */
  origin: string;
  /** The graph holding it: "main", or the path of a subgraph. */
  graph: string;
  /** Set by the reader: the name of the checkpoint entry for this tensor. */
  entryName?: string;
}

export interface Dim {
  value?: number;
  param?: string;
}

export interface ValueInfoRecord {
  name: string;
  elemType?: number;
  /** Absent when the type has no shape at all. */
  dims?: Dim[];
}

export interface AttributeRecord {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: string;
  t?: TensorRecord;
  g?: GraphRecord;
  floats: number[];
  ints: number[];
  strings: string[];
  tensors: TensorRecord[];
  graphs: GraphRecord[];
}

export interface NodeRecord {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: AttributeRecord[];
  /** Where each input's field (tag to end) sits, and the node's own frame: for repointing an input. */
  inputFields?: { start: number; end: number }[];
  frame?: number;
}

export interface GraphRecord {
  name: string;
  /** "main" or the path of the subgraph (node/attribute) for messages. */
  path: string;
  nodes: NodeRecord[];
  initializers: TensorRecord[];
  inputs: ValueInfoRecord[];
  outputs: ValueInfoRecord[];
  valueInfo: ValueInfoRecord[];
  sparseInitializers: number;
  /** The GraphProto's own frame (new initializers are appended at its end). */
  frame?: number;
}

export interface ModelRecord {
  path: string;
  size: number;
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: string;
  graph: GraphRecord;
  frames: Frame[];
  /** Every tensor in the file (initializers, Constant values, tensor attributes), in file order. */
  tensors: TensorRecord[];
}

/** Subgraphs nest (If inside Loop inside If…); beyond this the file is refused, not recursed into. */
const MAX_GRAPH_DEPTH = 32;

class Walker {
  readonly frames: Frame[] = [];
  readonly tensors: TensorRecord[] = [];

  constructor(readonly src: ByteSource) {}

  private frameOf(f: Field, parent: number): number {
    this.frames.push({ lenPos: f.lenPos, lenSize: f.lenSize, start: f.start, end: f.end, parent });
    return this.frames.length - 1;
  }

  private expect(f: Field, wire: number, where: string): boolean {
    if (f.wire === wire) return true;
    this.src.fail(`${where}: field ${f.num} at byte ${f.tagPos} has wire type ${f.wire}, expected ${wire}`);
  }

  private str(f: Field, where: string): string {
    this.expect(f, LEN, where);
    return this.src.utf8(f.start, f.end - f.start);
  }

  model(): ModelRecord {
    const src = this.src;
    let irVersion: number | undefined;
    let graph: GraphRecord | undefined;
    let producer = '';
    const opsets: { domain: string; version: number }[] = [];
    forEachField(src, 0, src.size, (f) => {
      switch (f.num) {
        case 1:
          this.expect(f, VARINT, 'ModelProto.ir_version');
          irVersion = f.value;
          break;
        case 2:
          producer = this.str(f, 'ModelProto.producer_name');
          break;
        case 7:
          this.expect(f, LEN, 'ModelProto.graph');
          if (graph) src.fail(`the model has two graphs (second at byte ${f.tagPos})`);
          graph = this.graph(f, -1, 'main', 0);
          break;
        case 8: {
          this.expect(f, LEN, 'ModelProto.opset_import');
          let domain = '';
          let version = 0;
          forEachField(src, f.start, f.end, (g) => {
            if (g.num === 1) domain = this.str(g, 'OperatorSetIdProto.domain');
            else if (g.num === 2 && this.expect(g, VARINT, 'OperatorSetIdProto.version')) version = g.value;
          });
          opsets.push({ domain, version });
          break;
        }
      }
    });
    if (irVersion === undefined) throw new OnnxFormatError(`${src.path}: not an ONNX model: no ir_version field`);
    if (!graph) throw new OnnxFormatError(`${src.path}: the ONNX model has no graph`);
    return { path: src.path, size: src.size, irVersion, opsets, producer, graph, frames: this.frames, tensors: this.tensors };
  }

  graph(f: Field, parent: number, path: string, depth: number): GraphRecord {
    if (depth > MAX_GRAPH_DEPTH) this.src.fail(`subgraphs nest deeper than ${MAX_GRAPH_DEPTH} levels at byte ${f.tagPos}`);
    const frame = this.frameOf(f, parent);
    const g: GraphRecord = { name: '', path, nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [], sparseInitializers: 0, frame };
    forEachField(this.src, f.start, f.end, (h) => {
      switch (h.num) {
        case 1:
          this.expect(h, LEN, 'GraphProto.node');
          g.nodes.push(this.node(h, frame, path, depth, g.nodes.length));
          break;
        case 2:
          g.name = this.str(h, 'GraphProto.name');
          break;
        case 5:
          this.expect(h, LEN, 'GraphProto.initializer');
          g.initializers.push(this.tensor(h, frame, path === 'main' ? 'initializer' : `initializer of ${path}`, path));
          break;
        case 11:
          g.inputs.push(this.valueInfo(h));
          break;
        case 12:
          g.outputs.push(this.valueInfo(h));
          break;
        case 13:
          g.valueInfo.push(this.valueInfo(h));
          break;
        case 15:
          g.sparseInitializers++;
          break;
      }
    });
    return g;
  }

  node(f: Field, parent: number, graphPath: string, depth: number, index: number): NodeRecord {
    const frame = this.frameOf(f, parent);
    const inputFields: { start: number; end: number }[] = [];
    const n: NodeRecord = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: [], inputFields, frame };
    const attrFields: Field[] = [];
    forEachField(this.src, f.start, f.end, (h) => {
      switch (h.num) {
        case 1:
          n.inputs.push(this.str(h, 'NodeProto.input'));
          inputFields.push({ start: h.tagPos, end: h.end });
          break;
        case 2:
          n.outputs.push(this.str(h, 'NodeProto.output'));
          break;
        case 3:
          n.name = this.str(h, 'NodeProto.name');
          break;
        case 4:
          n.opType = this.str(h, 'NodeProto.op_type');
          break;
        case 5:
          this.expect(h, LEN, 'NodeProto.attribute');
          attrFields.push(h);
          break;
        case 7:
          n.domain = this.str(h, 'NodeProto.domain');
          break;
      }
    });
    // Attributes after the node's own fields: their origin strings name the node.
    const label = n.name || n.outputs[0] || `#${index}`;
    const where = graphPath === 'main' ? `node ${label}` : `node ${label} in ${graphPath}`;
    for (const h of attrFields) n.attributes.push(this.attribute(h, frame, n, where, depth, graphPath));
    return n;
  }

  attribute(f: Field, parent: number, node: NodeRecord, where: string, depth: number, graphPath: string): AttributeRecord {
    const frame = this.frameOf(f, parent);
    const a: AttributeRecord = { name: '', type: 0, floats: [], ints: [], strings: [], tensors: [], graphs: [] };
    const deferred: Field[] = [];
    forEachField(this.src, f.start, f.end, (h) => {
      switch (h.num) {
        case 1:
          a.name = this.str(h, 'AttributeProto.name');
          break;
        case 2:
          this.expect(h, FIXED32, 'AttributeProto.f');
          a.f = this.src.floatLE(h.start);
          break;
        case 3:
          this.expect(h, VARINT, 'AttributeProto.i');
          a.i = h.value;
          break;
        case 4:
          a.s = this.str(h, 'AttributeProto.s');
          break;
        case 7:
          this.repeatedFloat(h, a.floats);
          break;
        case 8:
          this.repeatedVarint(h, a.ints);
          break;
        case 9:
          a.strings.push(this.str(h, 'AttributeProto.strings'));
          break;
        case 20:
          this.expect(h, VARINT, 'AttributeProto.type');
          a.type = h.value;
          break;
        case 5:
        case 6:
        case 10:
        case 11:
          this.expect(h, LEN, `AttributeProto field ${h.num}`);
          deferred.push(h);
          break;
      }
    });
    // Tensors and subgraphs are read once the attribute's name is known (it may come later).
    for (const h of deferred) {
      const label = node.opType === 'Constant' && a.name === 'value' ? `Constant ${where}` : `attribute ${a.name} of ${where}`;
      if (h.num === 5) a.t = this.tensor(h, frame, label, graphPath);
      else if (h.num === 10) a.tensors.push(this.tensor(h, frame, label, graphPath));
      else {
        const g = this.graph(h, frame, `${a.name} of ${where}`, depth + 1);
        if (h.num === 6) a.g = g;
        else a.graphs.push(g);
      }
    }
    return a;
  }

  tensor(f: Field, parent: number, origin: string, graph: string): TensorRecord {
    const frame = this.frameOf(f, parent);
    const t: TensorRecord = { name: '', dataType: 0, dims: [], frame, typed: new Map(), external: [], dataLocation: 0, origin, graph };
    forEachField(this.src, f.start, f.end, (h) => {
      switch (h.num) {
        case 1:
          this.repeatedVarint(h, t.dims);
          break;
        case 2:
          this.expect(h, VARINT, 'TensorProto.data_type');
          t.dataType = h.value;
          break;
        case 8:
          t.name = this.str(h, 'TensorProto.name');
          break;
        case 9:
          this.expect(h, LEN, 'TensorProto.raw_data');
          t.raw = { start: h.start, end: h.end };
          break;
        case 13:
          this.expect(h, LEN, 'TensorProto.external_data');
          t.external.push(this.externalEntry(h, frame));
          break;
        case 14:
          this.expect(h, VARINT, 'TensorProto.data_location');
          t.dataLocation = h.value;
          break;
        case 4:
        case 5:
        case 6:
        case 7:
        case 10:
        case 11: {
          let list = t.typed.get(h.num);
          if (!list) t.typed.set(h.num, (list = []));
          list.push({ packed: h.wire === LEN && h.num !== 6, tagPos: h.tagPos, lenPos: h.lenPos, lenSize: h.lenSize, start: h.start, end: h.end });
          break;
        }
      }
    });
    this.tensors.push(t);
    return t;
  }

  externalEntry(f: Field, parent: number): ExternalEntry {
    const frame = this.frameOf(f, parent);
    const e: ExternalEntry = { key: '', value: '', valueLenPos: 0, valueLenSize: 0, valueStart: 0, valueEnd: 0, frame };
    forEachField(this.src, f.start, f.end, (h) => {
      if (h.num === 1) e.key = this.str(h, 'StringStringEntryProto.key');
      else if (h.num === 2) {
        e.value = this.str(h, 'StringStringEntryProto.value');
        e.valueLenPos = h.lenPos;
        e.valueLenSize = h.lenSize;
        e.valueStart = h.start;
        e.valueEnd = h.end;
      }
    });
    return e;
  }

  valueInfo(f: Field): ValueInfoRecord {
    this.expect(f, LEN, 'ValueInfoProto');
    const v: ValueInfoRecord = { name: '' };
    forEachField(this.src, f.start, f.end, (h) => {
      if (h.num === 1) v.name = this.str(h, 'ValueInfoProto.name');
      else if (h.num === 2 && h.wire === LEN) {
        // TypeProto.tensor_type (1) → elem_type (1), shape (2) → dim (1) → dim_value (1) / dim_param (2).
        forEachField(this.src, h.start, h.end, (ty) => {
          if (ty.num !== 1 || ty.wire !== LEN) return;
          forEachField(this.src, ty.start, ty.end, (tt) => {
            if (tt.num === 1 && tt.wire === VARINT) v.elemType = tt.value;
            else if (tt.num === 2 && tt.wire === LEN) {
              const dims: Dim[] = [];
              forEachField(this.src, tt.start, tt.end, (d) => {
                if (d.num !== 1 || d.wire !== LEN) return;
                const dim: Dim = {};
                forEachField(this.src, d.start, d.end, (dd) => {
                  if (dd.num === 1 && dd.wire === VARINT) dim.value = dd.value;
                  else if (dd.num === 2 && dd.wire === LEN) dim.param = this.src.utf8(dd.start, dd.end - dd.start);
                });
                dims.push(dim);
              });
              v.dims = dims;
            }
          });
        });
      }
    });
    return v;
  }

  private repeatedVarint(f: Field, into: number[]): void {
    if (f.wire === VARINT) {
      into.push(f.value);
      return;
    }
    this.expect(f, LEN, `packed field ${f.num}`);
    let pos = f.start;
    while (pos < f.end) {
      const v = readVarint(this.src, pos, f.end);
      into.push(v.value);
      pos = v.next;
    }
  }

  private repeatedFloat(f: Field, into: number[]): void {
    if (f.wire === FIXED32) {
      into.push(this.src.floatLE(f.start));
      return;
    }
    this.expect(f, LEN, `packed field ${f.num}`);
    if ((f.end - f.start) % 4 !== 0) this.src.fail(`packed floats at byte ${f.start} are not a multiple of 4 bytes`);
    for (let pos = f.start; pos < f.end; pos += 4) into.push(this.src.floatLE(pos));
  }
}

export function parseModel(src: ByteSource): ModelRecord {
  return new Walker(src).model();
}

/** Reads the elements of a typed data segment list (for small tensors in non-raw encodings). */
export function readSegments(src: ByteSource, segments: readonly Segment[], fieldNum: number): number[] {
  const out: number[] = [];
  for (const s of segments) {
    if (fieldNum === 4) {
      if (s.packed) {
        if ((s.end - s.start) % 4) src.fail(`float_data at byte ${s.start} is not a multiple of 4 bytes`);
        for (let p = s.start; p < s.end; p += 4) out.push(src.floatLE(p));
      } else {
        if (s.end - s.start !== 4) src.fail(`float_data element at byte ${s.tagPos} has wire type ${s.end - s.start === 8 ? FIXED64 : 'varint'}`);
        out.push(src.floatLE(s.start));
      }
    } else if (fieldNum === 10) {
      if (s.packed) {
        if ((s.end - s.start) % 8) src.fail(`double_data at byte ${s.start} is not a multiple of 8 bytes`);
        for (let p = s.start; p < s.end; p += 8) out.push(src.doubleLE(p));
      } else {
        if (s.end - s.start !== 8) src.fail(`double_data element at byte ${s.tagPos} is not 8 bytes`);
        out.push(src.doubleLE(s.start));
      }
    } else if (s.packed) {
      let p = s.start;
      while (p < s.end) {
        const v = readVarint(src, p, s.end);
        out.push(v.value);
        p = v.next;
      }
    } else {
      out.push(readVarint(src, s.start, s.end).value);
    }
  }
  return out;
}
