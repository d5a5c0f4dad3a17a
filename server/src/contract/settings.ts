// Settings: section `synapticBalance` (workspace/configuration, didChangeConfiguration, or
// initializationOptions for clients that have neither). One table holds every setting's
// name, default and check; the client (client/src/config.ts) and the server
// (server/src/lsp/settings.ts) both read values through checkSettings, and package.json's
// `contributes.configuration` states the same (test/unit/clientManifest.test.ts compares them).

export const SETTINGS_SECTION = 'synapticBalance';

export type SeverityName = 'error' | 'warning' | 'information' | 'hint';
export const SEVERITIES: readonly SeverityName[] = ['error', 'warning', 'information', 'hint'];

/** Where quick fixes balance: `auto` is the fastest GPU backend that starts (large models only), else the CPU. */
export type DeviceSetting = 'auto' | 'cpu' | 'cuda' | 'mps';
export const DEVICE_SETTINGS: readonly DeviceSetting[] = ['auto', 'cpu', 'cuda', 'mps'];

export interface Settings {
  /** Regularizer Σ|w|^p that costs and balance are measured with (p > 0). */
  regularizerP: number;
  /** A balanceable unit is out of balance when |IN − OUT| / (IN + OUT) exceeds this. */
  tolerance: number;
  /** Severity of out-of-balance diagnostics. */
  severity: SeverityName;
  /** Quick fixes overwrite the checkpoint (keeping `<file>.bak`) instead of writing `<name>.balanced.<ext>`. */
  inPlace: boolean;
  /** Globs (relative to each workspace folder) of checkpoints to analyse; empty: every extension a known format uses. */
  include: string[];
  /** Globs never scanned. */
  exclude: string[];
  /** Per layer, at most this many unit diagnostics (the worst first). */
  maxDiagnosticsPerLayer: number;
  /** Activation assumed for hidden layers whose file does not state one (e.g. `relu`); empty: none assumed. */
  activation: string;
  /** How often the workspace is polled for new or rewritten checkpoints. */
  pollIntervalMs: number;
  /** A file is analysed once its size and modification time have been still this long. */
  settleMs: number;
  /** Where quick fixes compute (costs, products, scaling): auto, cpu, cuda or mps. */
  device: DeviceSetting;
  /** Python interpreter for the torch backend; empty: the Python extension's, else `python3`. */
  python: string;
}

/**
 * One setting: its default and what a value must be, in the terms of package.json's JSON
 * schema (`type`, `minimum`, `exclusiveMinimum`, `enum`; arrays hold non-empty strings).
 */
export interface SettingSpec<T> {
  type: 'number' | 'integer' | 'boolean' | 'string' | 'array';
  default: T;
  minimum?: number;
  exclusiveMinimum?: number;
  enum?: readonly string[];
  /** What a value must be, for the warning that rejects one. */
  expected: string;
  /** Applied to an accepted value (e.g. trimming). */
  normalize?: (v: T) => T;
}

/** Every setting (the keys of `Settings`, in package.json's order). */
export const SETTINGS: { readonly [K in keyof Settings]: SettingSpec<Settings[K]> } = {
  regularizerP: { type: 'number', default: 2, exclusiveMinimum: 0, expected: 'a number > 0' },
  tolerance: { type: 'number', default: 1e-3, minimum: 0, expected: 'a number ≥ 0' },
  severity: { type: 'string', default: 'warning', enum: SEVERITIES, expected: SEVERITIES.join(', ') },
  inPlace: { type: 'boolean', default: false, expected: 'true or false' },
  include: { type: 'array', default: [], expected: 'a list of globs' },
  exclude: { type: 'array', default: ['**/node_modules/**', '**/.git/**'], expected: 'a list of globs' },
  maxDiagnosticsPerLayer: { type: 'integer', default: 10, minimum: 0, expected: 'an integer ≥ 0' },
  activation: { type: 'string', default: '', expected: 'an activation name such as relu, or ""' },
  pollIntervalMs: { type: 'integer', default: 2000, minimum: 1, expected: 'a whole number of milliseconds ≥ 1' },
  settleMs: { type: 'integer', default: 1000, minimum: 0, expected: 'a whole number of milliseconds ≥ 0' },
  device: { type: 'string', default: 'auto', enum: DEVICE_SETTINGS, expected: DEVICE_SETTINGS.join(', ') },
  python: { type: 'string', default: '', expected: 'a path to a Python interpreter, or ""', normalize: (v) => v.trim() },
};

export const SETTING_NAMES = Object.keys(SETTINGS) as readonly (keyof Settings)[];

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze(Object.fromEntries(SETTING_NAMES.map((k) => [k, SETTINGS[k].default])) as unknown as Settings);

/** Whether `v` is an acceptable value of a setting described by `spec`. */
export function isValidSetting(spec: SettingSpec<unknown>, v: unknown): boolean {
  switch (spec.type) {
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string' && (!spec.enum || spec.enum.includes(v));
    case 'array':
      return Array.isArray(v) && v.every((g) => typeof g === 'string' && g.length > 0);
    case 'number':
    case 'integer':
      return (
        typeof v === 'number' &&
        Number.isFinite(v) &&
        (spec.type === 'number' || Number.isInteger(v)) &&
        (spec.minimum === undefined || v >= spec.minimum) &&
        (spec.exclusiveMinimum === undefined || v > spec.exclusiveMinimum)
      );
  }
}

/**
 * Settings from any value (null, partial, wrong types): each field checked against its spec;
 * a missing or null field takes its default, a bad one too, with a warning that names it.
 * Arrays are copies (never the defaults' own).
 */
export function checkSettings(raw: unknown, warn: (message: string) => void = () => {}): Settings {
  const src = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const out: Record<string, unknown> = {};
  for (const key of SETTING_NAMES) {
    const spec = SETTINGS[key] as SettingSpec<unknown>;
    let v = src[key];
    if (v === undefined || v === null) v = spec.default;
    else if (!isValidSetting(spec, v)) {
      warn(`${SETTINGS_SECTION}.${key} must be ${spec.expected}; using ${JSON.stringify(spec.default)}`);
      v = spec.default;
    } else if (spec.normalize) v = spec.normalize(v);
    out[key] = Array.isArray(v) ? [...v] : v;
  }
  return out as unknown as Settings;
}
