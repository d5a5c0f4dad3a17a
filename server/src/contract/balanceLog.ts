// The balance log: one JSON record per line (server/schemas/balance-log.schema.json), written
// by the loggers (server/src/monitor/tfjsLogger.ts, the demo runs, server/loggers/*.py) and read
// by the training monitor (client/src/monitor/runs/). Its version, record types, the checked
// parse of one line, and float arrays as a log carries them: JSON lists (null for NaN/±∞,
// which JSON lacks) or little-endian IEEE floats in base64, the compact form for large layers
// (also the form of synbal/checkpointCosts' per-unit costs).
// Uses Node's Buffer (the server and the extension host): not for the webview.

export const LOG_VERSION = 1;

export interface EncodedFloats {
  dtype: 'float32' | 'float64';
  b64: string;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian float32 bytes of `values`, in base64 (what CheckpointCostsResult and the loggers send). */
export function float32Base64(values: ArrayLike<number>): string {
  const f = Float32Array.from(values);
  const bytes = new Uint8Array(f.buffer);
  if (!littleEndian) swapBytes(bytes, 4);
  return Buffer.from(bytes).toString('base64');
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/** Decodes base64 little-endian floats into float64 (costs are summed and divided in float64). */
export function decodeBase64Floats(b64: string, dtype: 'float32' | 'float64'): Float64Array {
  const size = dtype === 'float32' ? 4 : 8;
  const buf = Buffer.from(b64, 'base64');
  if (buf.length % size !== 0) throw new Error(`${dtype} base64 holds ${buf.length} bytes, not a multiple of ${size}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const n = buf.length / size;
  const out = new Float64Array(n);
  if (size === 4) for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  else for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

/** A log's array field (list or base64 object) as float64; throws naming `what` when malformed. */
export function decodeFloats(value: unknown, what: string): Float64Array {
  if (Array.isArray(value)) {
    const out = new Float64Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (v === null) out[i] = NaN;
      else if (typeof v === 'number') out[i] = v;
      else throw new Error(`${what}[${i}] is ${JSON.stringify(v)}, not a number`);
    }
    return out;
  }
  if (value && typeof value === 'object') {
    const { dtype, b64 } = value as Partial<EncodedFloats>;
    if ((dtype === 'float32' || dtype === 'float64') && typeof b64 === 'string') return decodeBase64Floats(b64, dtype);
    throw new Error(`${what} must be a list of numbers or {"dtype": "float32"|"float64", "b64": "…"}`);
  }
  throw new Error(`${what} must be a list of numbers or {"dtype", "b64"}, not ${JSON.stringify(value)}`);
}

/**
 * How a logger writes an array: base64 float32 from `minB64` elements on (or when a value is
 * not finite, which a JSON list could only write as null), else a plain list.
 */
export function encodeFloats(values: ArrayLike<number>, minB64 = 32): number[] | EncodedFloats {
  let finite = true;
  for (let i = 0; i < values.length && finite; i++) finite = Number.isFinite(values[i]);
  if (values.length >= minB64 || !finite) return { dtype: 'float32', b64: float32Base64(values) };
  return Array.from(values, (v) => Math.fround(v));
}

/** A scalar for JSON: null for NaN and infinities. */
export function jsonScalar(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** A layer of a record as read: arrays decoded to float64. */
export interface LayerRecord {
  name: string;
  in?: Float64Array;
  out?: Float64Array;
  /** Relative deficits as logged (when IN/OUT are not). */
  deficit?: Float64Array;
  R?: number;
  totalDeficit?: number;
  weightNorm?: number;
}

/**
 * A balancing done by the training process at this step (synbal_torch.BalanceSchedule, the
 * TF.js logger's `balanceEvery`): the record's layers are the balanced state. Scalars as read
 * (NaN for null); the optional ones are NaN / undefined when not logged.
 */
export interface BalanceEvent {
  /** R before − R after (Σ|w|^p over the balanced layers' weights and biases). */
  deltaR: number;
  RBefore: number;
  RAfter: number;
  /** Sweeps the balancing took; NaN when not logged. */
  iterations: number;
  /** Largest relative deficit of a balanceable unit after balancing; NaN when not logged. */
  maxDeficit: number;
  converged?: boolean;
}

export interface LogRecord {
  run?: string;
  step: number;
  time: number;
  p: number;
  layers: LayerRecord[];
  balance?: BalanceEvent;
}

function scalar(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (v === null) return NaN;
  if (typeof v !== 'number') throw new Error(`${what} must be a number or null, not ${JSON.stringify(v)}`);
  return v;
}

function layerOf(raw: unknown, i: number): LayerRecord {
  const where = `layers[${i}]`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where} must be an object`);
  const o = raw as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') throw new Error(`${where}.name must be a non-empty string`);
  const name = o.name;
  const layer: LayerRecord = { name };
  const hasIn = o.in !== undefined;
  const hasOut = o.out !== undefined;
  if (hasIn !== hasOut) throw new Error(`layer ${name}: "in" and "out" come together`);
  if (hasIn) {
    layer.in = decodeFloats(o.in, `layer ${name}: in`);
    layer.out = decodeFloats(o.out, `layer ${name}: out`);
    if (layer.in.length !== layer.out.length) throw new Error(`layer ${name}: "in" has ${layer.in.length} units but "out" ${layer.out.length}`);
  }
  if (o.deficit !== undefined) layer.deficit = decodeFloats(o.deficit, `layer ${name}: deficit`);
  if (!hasIn && !layer.deficit) throw new Error(`layer ${name} has neither "in"/"out" nor "deficit"`);
  if (layer.in && layer.deficit && layer.deficit.length !== layer.in.length) throw new Error(`layer ${name}: "deficit" has ${layer.deficit.length} units but "in" ${layer.in.length}`);
  const R = scalar(o.R, `layer ${name}: R`);
  const total = scalar(o.totalDeficit, `layer ${name}: totalDeficit`);
  const norm = scalar(o.weightNorm, `layer ${name}: weightNorm`);
  if (R !== undefined) layer.R = R;
  if (total !== undefined) layer.totalDeficit = total;
  if (norm !== undefined) layer.weightNorm = norm;
  return layer;
}

function balanceOf(raw: unknown): BalanceEvent {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`"balance" must be an object, not ${JSON.stringify(raw)}`);
  const o = raw as Record<string, unknown>;
  if (o.deltaR === undefined) throw new Error('"balance" needs "deltaR"');
  const num = (k: string) => scalar(o[k], `balance.${k}`) ?? NaN;
  const ev: BalanceEvent = { deltaR: num('deltaR'), RBefore: num('RBefore'), RAfter: num('RAfter'), iterations: NaN, maxDeficit: num('maxDeficit') };
  if (o.iterations !== undefined) {
    if (typeof o.iterations !== 'number' || !Number.isInteger(o.iterations) || o.iterations < 0) throw new Error(`balance.iterations must be an integer ≥ 0, not ${JSON.stringify(o.iterations)}`);
    ev.iterations = o.iterations;
  }
  if (o.converged !== undefined) {
    if (typeof o.converged !== 'boolean') throw new Error(`balance.converged must be true or false, not ${JSON.stringify(o.converged)}`);
    ev.converged = o.converged;
  }
  return ev;
}

/** Parses and checks one log line. */
export function parseRecord(line: string): LogRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    throw new Error(`not JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('a record must be a JSON object');
  const o = raw as Record<string, unknown>;
  if (o.v !== LOG_VERSION) throw new Error(`unsupported format version ${JSON.stringify(o.v)} (this reader knows v ${LOG_VERSION})`);
  if (typeof o.step !== 'number' || !Number.isFinite(o.step)) throw new Error(`"step" must be a number, not ${JSON.stringify(o.step)}`);
  if (typeof o.time !== 'number' || !Number.isFinite(o.time)) throw new Error(`"time" must be a number (seconds since the epoch), not ${JSON.stringify(o.time)}`);
  const p = o.p === undefined ? 2 : o.p;
  if (typeof p !== 'number' || !(p > 0)) throw new Error(`"p" must be a number > 0, not ${JSON.stringify(o.p)}`);
  if (o.run !== undefined && typeof o.run !== 'string') throw new Error(`"run" must be a string`);
  if (!Array.isArray(o.layers)) throw new Error('"layers" must be a list');
  const layers = o.layers.map(layerOf);
  const seen = new Set<string>();
  for (const l of layers) {
    if (seen.has(l.name)) throw new Error(`layer ${l.name} appears twice`);
    seen.add(l.name);
  }
  const rec: LogRecord = { run: o.run as string | undefined, step: o.step, time: o.time, p, layers };
  if (o.balance !== undefined) rec.balance = balanceOf(o.balance);
  return rec;
}
