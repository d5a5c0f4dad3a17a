// Opening an ONNX model: parse the structure, check the graphs, and list every tensor (initializers,
// Constant values, tensor attributes, in subgraphs too) as a lazily read checkpoint entry.
import { stampOf, type Checkpoint, type FileStamp, type TensorEntry } from '../core/checkpoint';
import { topologicalOrder } from './graphOrder';
import { parseModel, type GraphRecord, type ModelRecord, type TensorRecord } from './proto';
import { entryOf } from './tensors';
import { ByteSource, type SourceOptions } from './wire';
import { FileError, asFileError } from '../../errors/fileError';

export const ONNX_FORMAT_ID = 'onnx';

/** What the ONNX reader leaves in Checkpoint.structure for the graph builder and the writer. */
export interface OnnxStructure {
  kind: 'onnx';
  model: ModelRecord;
  /** The record behind each checkpoint entry, by entry name. */
  records: Map<string, TensorRecord>;
  /** Entries by name (the checkpoint's list, indexed). */
  entries: Map<string, TensorEntry>;
}

export function onnxStructure(cp: Checkpoint): OnnxStructure {
  const s = cp.structure as OnnxStructure | undefined;
  if (!s || s.kind !== 'onnx') throw new FileError(cp.path, `not an ONNX checkpoint`);
  return s;
}

/** Entry names: the tensor's own name, else what defines it (a Constant's output, node.attribute). */
function candidateNames(g: GraphRecord): Map<TensorRecord, string> {
  const names = new Map<TensorRecord, string>();
  g.initializers.forEach((t, i) => names.set(t, t.name || `initializer#${i}`));
  g.nodes.forEach((n, i) => {
    const node = n.name || n.outputs[0] || `node#${i}`;
    for (const a of n.attributes) {
      if (a.t) names.set(a.t, n.opType === 'Constant' && a.name === 'value' && n.outputs[0] ? n.outputs[0] : a.t.name || `${node}.${a.name}`);
      a.tensors.forEach((t, k) => names.set(t, t.name || `${node}.${a.name}[${k}]`));
    }
  });
  return names;
}

function subgraphs(g: GraphRecord): GraphRecord[] {
  const out: GraphRecord[] = [];
  for (const n of g.nodes) for (const a of n.attributes) out.push(...(a.g ? [a.g] : []), ...a.graphs);
  return out;
}

/** `opts` tune how the structure is read (tests use a tiny window to exercise large-file reading). */
export function openOnnx(path: string, opts: SourceOptions = {}): Checkpoint {
  let src: ByteSource;
  try {
    src = ByteSource.open(path, opts);
  } catch (e) {
    throw new FileError(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const stamp = stampOf(path);
    const model = parseModel(src);
    const warnings: string[] = [];
    const tensors: TensorEntry[] = [];
    const records = new Map<string, TensorRecord>();
    const entries = new Map<string, TensorEntry>();
    const files = new Map<string, FileStamp>([[path, stamp]]);
    const visit = (g: GraphRecord) => {
      topologicalOrder(g, path);
      if (g.sparseInitializers > 0) warnings.push(`${g.sparseInitializers} sparse initializer(s) in ${g.path === 'main' ? 'the graph' : g.path} were skipped`);
      for (const [t, wanted] of candidateNames(g)) {
        let name = wanted;
        if (records.has(name)) name = `${wanted} (${g.path})`;
        for (let k = 2; records.has(name); k++) name = `${wanted} (${g.path}) #${k}`;
        if (name !== wanted) warnings.push(`tensor name "${wanted}" occurs more than once; the one in ${t.origin} is listed as "${name}"`);
        const entry = entryOf(model, src, t, name);
        t.entryName = name;
        records.set(name, t);
        entries.set(name, entry);
        tensors.push(entry);
        if (entry.file !== path && !files.has(entry.file)) files.set(entry.file, stampOf(entry.file));
      }
      for (const sub of subgraphs(g)) visit(sub);
    };
    visit(model.graph);
    const structure: OnnxStructure = { kind: 'onnx', model, records, entries };
    return { path, format: ONNX_FORMAT_ID, tensors, files: [...files.values()], warnings, structure };
  } catch (e) {
    throw asFileError(path, e);
  } finally {
    src.close();
  }
}
