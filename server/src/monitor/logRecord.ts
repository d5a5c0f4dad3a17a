// One line of a balance log (server/schemas/balance-log.schema.json) checked and decoded. Pure:
// errors are thrown with what is wrong; the caller adds the file and line number.
import { decodeFloats } from './floatArrays';

export const LOG_VERSION = 1;

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

export interface LogRecord {
  run?: string;
  step: number;
  time: number;
  p: number;
  layers: LayerRecord[];
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
  return { run: o.run as string | undefined, step: o.step, time: o.time, p, layers };
}
