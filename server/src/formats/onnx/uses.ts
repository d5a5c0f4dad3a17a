// One stored tensor read by several nodes: PyTorch's exporter deduplicates identical initializers
// (squeezenet's all-zero conv biases become one), so a tensor may feed layers whose units scale
// differently. Such a tensor is never rewritten; each use that is scaled gets a tensor of its own
// in the network, named here, which the writer stores as a new initializer read by that node alone.

/** A tensor of the network that stands for one node's use of a shared stored tensor. */
export interface UseCopy {
  /** The stored tensor (an initializer of the main graph). */
  base: string;
  /** The node's index in the main graph, and the input that reads `base`. */
  node: number;
  input: number;
}

const USE_COPY = /^(.*)#use(\d+)\.(\d+)$/s;

export function useCopyName(c: UseCopy): string {
  return `${c.base}#use${c.node}.${c.input}`;
}

export function parseUseCopy(name: string): UseCopy | undefined {
  const m = USE_COPY.exec(name);
  return m ? { base: m[1], node: Number(m[2]), input: Number(m[3]) } : undefined;
}

/** The name of the new initializer for a use copy: the base name, marked, clashing with none taken. */
export function newInitializerName(c: UseCopy, taken: ReadonlySet<string>): string {
  const stem = `${c.base}.synbal_use${c.node}_${c.input}`;
  let name = stem;
  for (let k = 2; taken.has(name); k++) name = `${stem}_${k}`;
  return name;
}
