// A Keras model config (Keras 2 `model_config` or Keras 3 `config.json`) reduced to one shape:
// layers with their class, config and the tensors each call reads, plus the model's inputs and
// outputs. Keras 2 writes inbound nodes as [[name, node, index, kwargs], …]; Keras 3 as
// {args, kwargs} with `__keras_tensor__` objects carrying `keras_history`.
import { FileError } from '../../errors/fileError';

export interface TensorRef {
  layer: string;
  node: number;
  index: number;
}

export interface KerasLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** The tensors read by each call of the layer (one list per inbound node). */
  calls: TensorRef[][];
  /** Shape of the input without the batch axis (InputLayer, or a first Sequential layer). */
  inputShape?: (number | null)[];
}

export interface KerasModel {
  name: string;
  className: string;
  generation: 2 | 3;
  layers: KerasLayer[];
  inputs: TensorRef[];
  outputs: TensorRef[];
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

class ConfigError extends Error {}

function bad(what: string): never {
  throw new ConfigError(what);
}

/** A shape without its batch axis: [null, 8, 8, 3] → [8, 8, 3]. */
function dropBatch(shape: unknown): (number | null)[] | undefined {
  if (!Array.isArray(shape) || shape.length === 0) return undefined;
  return shape.slice(1).map((d) => (typeof d === 'number' && Number.isSafeInteger(d) && d >= 0 ? d : null));
}

function declaredInputShape(entry: Json, cfg: Json): (number | null)[] | undefined {
  const build = isObject(entry.build_config) ? entry.build_config.input_shape : undefined;
  return dropBatch(cfg.batch_input_shape) ?? dropBatch(cfg.batch_shape) ?? dropBatch(build) ?? (Array.isArray(cfg.input_shape) ? dropBatch([null, ...cfg.input_shape]) : undefined);
}

function ref(v: unknown): TensorRef | undefined {
  if (!Array.isArray(v) || typeof v[0] !== 'string') return undefined;
  return { layer: v[0], node: typeof v[1] === 'number' ? v[1] : 0, index: typeof v[2] === 'number' ? v[2] : 0 };
}

/** Every `__keras_tensor__` in a Keras 3 call's args, in order. */
function kerasTensors(v: unknown, out: TensorRef[]): void {
  if (Array.isArray(v)) {
    for (const x of v) kerasTensors(x, out);
    return;
  }
  if (!isObject(v)) return;
  if (v.class_name === '__keras_tensor__' && isObject(v.config)) {
    const r = ref(v.config.keras_history);
    if (r) out.push(r);
    return;
  }
  for (const x of Object.values(v)) kerasTensors(x, out);
}

function parseNode(node: unknown, layer: string): TensorRef[] {
  if (isObject(node)) {
    // Keras 3: tensors in positional args; kwargs hold options (training, mask), not inputs.
    const refs: TensorRef[] = [];
    kerasTensors(node.args, refs);
    return refs;
  }
  if (Array.isArray(node)) {
    return node.map((item, i) => ref(item) ?? bad(`layer ${layer}: inbound node entry ${i} is not [layer, node, tensor]`));
  }
  return bad(`layer ${layer}: an inbound node is neither a list nor an object`);
}

function refList(v: unknown, what: string): TensorRef[] {
  if (!Array.isArray(v)) return bad(`the model config has no ${what}`);
  const single = ref(v);
  if (single && !Array.isArray(v[0])) return [single];
  return v.map((x, i) => ref(x) ?? bad(`${what} entry ${i} is not [layer, node, tensor]`));
}

function layerEntry(entry: unknown, i: number): { className: string; name: string; config: Json; raw: Json } {
  if (!isObject(entry)) bad(`layer ${i} of the model config is not an object`);
  const className = typeof entry.class_name === 'string' ? entry.class_name : bad(`layer ${i} of the model config has no class_name`);
  const config = isObject(entry.config) ? entry.config : {};
  const name = typeof entry.name === 'string' ? entry.name : typeof config.name === 'string' ? config.name : bad(`layer ${i} (${className}) has no name`);
  return { className, name, config, raw: entry };
}

function sequential(name: string, className: string, layersJson: unknown[], generation: 2 | 3): KerasModel {
  const layers: KerasLayer[] = [];
  let prev: string | undefined;
  layersJson.forEach((entry, i) => {
    const { className: cls, name: lname, config, raw } = layerEntry(entry, i);
    if (cls === 'InputLayer') {
      if (prev !== undefined) bad(`Sequential model: InputLayer ${lname} is not the first layer`);
      layers.push({ name: lname, className: cls, config, calls: [], inputShape: declaredInputShape(raw, config) });
      prev = lname;
      return;
    }
    if (prev === undefined) {
      // Keras names the implicit input of a Sequential model after its first layer.
      const input = `${lname}_input`;
      layers.push({ name: input, className: 'InputLayer', config: { name: input }, calls: [], inputShape: declaredInputShape(raw, config) });
      prev = input;
    }
    layers.push({ name: lname, className: cls, config, calls: [[{ layer: prev, node: 0, index: 0 }]] });
    prev = lname;
  });
  if (prev === undefined) bad('the Sequential model has no layers');
  const input = layers[0];
  return { name, className, generation, layers, inputs: [{ layer: input.name, node: 0, index: 0 }], outputs: [{ layer: prev, node: 0, index: 0 }] };
}

function functional(name: string, className: string, cfg: Json, generation: 2 | 3): KerasModel {
  if (!Array.isArray(cfg.layers)) bad('the functional model config has no "layers" list');
  const layers: KerasLayer[] = cfg.layers.map((entry, i) => {
    const { className: cls, name: lname, config, raw } = layerEntry(entry, i);
    const nodes = Array.isArray(raw.inbound_nodes) ? raw.inbound_nodes : [];
    const layer: KerasLayer = { name: lname, className: cls, config, calls: nodes.map((n) => parseNode(n, lname)) };
    if (cls === 'InputLayer') layer.inputShape = declaredInputShape(raw, config);
    return layer;
  });
  return { name, className, generation, layers, inputs: refList(cfg.input_layers, 'input_layers'), outputs: refList(cfg.output_layers, 'output_layers') };
}

/**
 * Normalizes a parsed model config. Throws an Error naming `where` when the config is not a
 * Sequential or functional model.
 */
export function parseModelConfig(json: unknown, where: string): KerasModel {
  try {
    if (!isObject(json)) bad('the model config is not a JSON object');
    const className = typeof json.class_name === 'string' ? json.class_name : bad('the model config has no class_name');
    const generation: 2 | 3 = 'module' in json || 'registered_name' in json ? 3 : 2;
    const cfg = json.config;
    const name = isObject(cfg) && typeof cfg.name === 'string' ? cfg.name : className;
    if (className === 'Sequential') {
      // Keras up to 2.2 wrote a Sequential config as a bare list of layers.
      const layers = Array.isArray(cfg) ? cfg : isObject(cfg) && Array.isArray(cfg.layers) ? cfg.layers : bad('the Sequential config has no "layers" list');
      return sequential(name, className, layers, generation);
    }
    if (className === 'Functional' || className === 'Model') {
      if (!isObject(cfg)) bad('the functional model config has no "config" object');
      return functional(name, className, cfg, generation);
    }
    return bad(`the model is a ${className}; only Sequential and functional models have a config that states their layers`);
  } catch (e) {
    if (e instanceof ConfigError) throw new FileError(where, `${e.message}`);
    throw e;
  }
}
