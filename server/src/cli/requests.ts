// The command line's arguments, parsed once into the use cases' requests (app/requests.ts).
import { BACKEND_NAMES, DEVICE_SETTINGS, type BackendName, type DeviceSetting } from '../compute/backend';
import type { CheckRequest } from '../app/analyse';
import { BALANCE_METHODS } from '../app/balance';
import type { BalanceScope } from '../contract/requests';
import type { AnalysisOptions, BalanceRequest, ComputeSpec, OutputSpec } from '../app/requests';
import { flagList, flagNumber, flagString, type ParsedArgs } from './args';

/** The default tolerance of check and balance: a unit is balanced when its relative deficit is below it. */
export const CLI_TOLERANCE = 1e-7;

export function formatOf(args: ParsedArgs, allowed: readonly string[] = ['text', 'json']): string {
  const f = flagString(args, 'format') ?? 'text';
  if (!allowed.includes(f)) throw new Error(`--format must be ${allowed.join(', ')}, got "${f}"`);
  return f;
}

export function fileOf(args: ParsedArgs, what = 'a model file'): string {
  const file = args.positional[0];
  if (!file) throw new Error(`which file? (give ${what} path)`);
  return file;
}

export function parseScope(text: string | undefined): BalanceScope {
  if (text === undefined || text === 'network') return { kind: 'network' };
  let m = /^layer(-tied)?:(.+)$/.exec(text);
  if (m) return { kind: 'layer', layer: m[2], tied: m[1] !== undefined };
  m = /^unit:(.+)#(\d+)$/.exec(text);
  if (m) return { kind: 'unit', layer: m[1], index: Number(m[2]) };
  throw new Error(`--scope must be network, layer:NAME, layer-tied:NAME or unit:NAME#INDEX, got "${text}"`);
}

function analysisOptionsOf(args: ParsedArgs): AnalysisOptions {
  const regularizer = flagString(args, 'regularizer');
  const p = flagNumber(args, 'p');
  if (regularizer !== undefined && p !== undefined) throw new Error('give either --p or --regularizer, not both');
  return { p: p ?? 2, regularizer, activation: flagString(args, 'activation') ?? '' };
}

/** --device / --python / --backend; the device is left out when not given (each use case has its default). */
function computeOf(args: ParsedArgs): Partial<ComputeSpec> {
  const device = flagString(args, 'device') as DeviceSetting | undefined;
  if (device !== undefined && !DEVICE_SETTINGS.includes(device)) throw new Error(`--device must be one of ${DEVICE_SETTINGS.join(', ')}, got "${device}"`);
  const backend = flagString(args, 'backend') as BackendName | undefined;
  if (backend !== undefined && !BACKEND_NAMES.includes(backend)) throw new Error(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got "${backend}"`);
  return { ...(device ? { device } : {}), python: flagString(args, 'python') ?? '', ...(backend ? { backend } : {}) };
}

export function checkRequestOf(args: ParsedArgs): CheckRequest {
  return { path: fileOf(args), options: analysisOptionsOf(args), tolerance: flagNumber(args, 'tolerance') ?? CLI_TOLERANCE, compute: computeOf(args), predict: args.flags.has('predict') };
}

function outputOf(args: ParsedArgs): OutputSpec {
  const inPlace = args.flags.has('in-place');
  const explicit = flagString(args, 'output');
  if (inPlace && explicit) throw new Error('give either --in-place or --output, not both');
  return inPlace ? { kind: 'in-place' } : explicit !== undefined ? { kind: 'path', path: explicit } : { kind: 'beside' };
}

export function balanceRequestOf(args: ParsedArgs): BalanceRequest {
  const path = fileOf(args);
  const compute = computeOf(args);
  const verify = args.flags.has('verify');
  const method = flagString(args, 'method') ?? 'optimal';
  if (!BALANCE_METHODS.includes(method)) throw new Error(`--method must be one of ${BALANCE_METHODS.join(', ')}, got "${method}"`);
  return {
    path,
    options: analysisOptionsOf(args),
    solve: {
      scope: parseScope(flagString(args, 'scope')),
      method,
      tolerance: flagNumber(args, 'tolerance') ?? CLI_TOLERANCE,
      seed: flagNumber(args, 'seed'),
      maxIterations: flagNumber(args, 'max-iterations'),
      compute: { device: compute.device ?? 'auto', python: compute.python ?? '', backend: compute.backend },
    },
    output: outputOf(args),
    // Without --verify nothing is checked; with it, a copy that cannot be checked is refused unless --force.
    verify: { enabled: verify, force: args.flags.has('force'), requireCheck: true, ...inputShapesOf(args, verify) },
  };
}

/** `--input-shape NAME=1x3x320x320`, repeatable (NAME may be left out for a model with one input). */
export function inputShapesOf(args: ParsedArgs, verify: boolean): { inputShapes?: Record<string, number[]> } {
  const given = flagList(args, 'input-shape');
  if (given.length === 0) return {};
  if (!verify) throw new Error('--input-shape sets the sizes the check runs at: give it with --verify');
  const shapes: Record<string, number[]> = {};
  for (const text of given) {
    const eq = text.lastIndexOf('=');
    const name = eq >= 0 ? text.slice(0, eq) : undefined;
    const parts = (eq >= 0 ? text.slice(eq + 1) : text).split(/[x×,]/i);
    const shape = parts.map(Number);
    if (name === '' || !shape.every((d, i) => parts[i].trim() !== '' && Number.isInteger(d) && d > 0)) throw new Error(`--input-shape wants NAME=1x3x320x320 (positive integers), got "${text}"`);
    const key = name ?? '';
    if (key in shapes) throw new Error(`--input-shape given twice for ${name ?? 'the input'}`);
    shapes[key] = shape;
  }
  return { inputShapes: shapes };
}
