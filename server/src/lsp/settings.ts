// Settings as the server uses them: whatever the client sent, checked field by field against
// the typed defaults in protocol.ts (a bad value falls back to its default, with a warning).
import { FORMATS } from '../formats/registry';
import { DEFAULT_SETTINGS, DEVICE_SETTINGS, type DeviceSetting, type SeverityName, type Settings } from '../protocol';
import type { AnalysisOptions, ComputeSpec } from './workerProtocol';
import { AUTO_DEVICE_MIN_ELEMENTS } from '../compute/threshold';

const SEVERITIES: readonly SeverityName[] = ['error', 'warning', 'information', 'hint'];

type Check<T> = (v: unknown) => v is T;

const positive: Check<number> = (v): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
const nonNegative: Check<number> = (v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const count: Check<number> = (v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const bool: Check<boolean> = (v): v is boolean => typeof v === 'boolean';
const text: Check<string> = (v): v is string => typeof v === 'string';
const globs: Check<string[]> = (v): v is string[] => Array.isArray(v) && v.every((g) => typeof g === 'string' && g.length > 0);
const severity: Check<SeverityName> = (v): v is SeverityName => SEVERITIES.includes(v as SeverityName);
const device: Check<DeviceSetting> = (v): v is DeviceSetting => DEVICE_SETTINGS.includes(v as DeviceSetting);

const CHECKS: { [K in keyof Settings]: [Check<Settings[K]>, string] } = {
  regularizerP: [positive, 'a number > 0'],
  tolerance: [nonNegative, 'a number ≥ 0'],
  severity: [severity, SEVERITIES.join(', ')],
  inPlace: [bool, 'true or false'],
  include: [globs, 'a list of globs'],
  exclude: [globs, 'a list of globs'],
  maxDiagnosticsPerLayer: [count, 'an integer ≥ 0'],
  activation: [text, 'an activation name such as relu, or ""'],
  pollIntervalMs: [positive, 'a number of milliseconds > 0'],
  settleMs: [nonNegative, 'a number of milliseconds ≥ 0'],
  device: [device, DEVICE_SETTINGS.join(', ')],
  python: [text, 'a path to a Python interpreter, or ""'],
};

/** Settings from any client value (null, partial, wrong types); warnings name each rejected field. */
export function normalizeSettings(raw: unknown, warn: (message: string) => void = () => {}): Settings {
  const src = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(DEFAULT_SETTINGS) as (keyof Settings)[]) {
    const v = src[key];
    const [ok, expected] = CHECKS[key] as [Check<unknown>, string];
    if (v === undefined || v === null) out[key] = DEFAULT_SETTINGS[key];
    else if (ok(v)) out[key] = v;
    else {
      warn(`synapticBalance.${key} must be ${expected}; using ${JSON.stringify(DEFAULT_SETTINGS[key])}`);
      out[key] = DEFAULT_SETTINGS[key];
    }
  }
  return out as unknown as Settings;
}

/** The globs checkpoints are found with: the setting, or every extension a registered format uses. */
export function includeGlobs(s: Settings): string[] {
  if (s.include.length > 0) return s.include;
  const exts = [...new Set(FORMATS.flatMap((f) => f.extensions))];
  return exts.map((e) => `**/*.${e}`);
}

/**
 * Where quick fixes compute, for the listing header: the setting, resolved where that needs no
 * process (a small model under `auto` stays on the CPU), else the device the last fix ran on.
 */
export function deviceLabel(s: Settings, parameters: number, lastDevice: string | undefined): string {
  if (s.device === 'cpu') return 'cpu';
  if (s.device === 'auto' && parameters < AUTO_DEVICE_MIN_ELEMENTS) return 'cpu (auto: small model)';
  return lastDevice ? `${lastDevice} (${s.device})` : `${s.device} (chosen at the first fix)`;
}

/** Where a fix's solve runs (the job picks and starts the backend on its thread). */
export function computeSpec(s: Settings): ComputeSpec {
  return { device: s.device, python: s.python.trim() };
}

export function analysisOptions(s: Settings): AnalysisOptions {
  return { p: s.regularizerP, activation: s.activation.trim() };
}

/** What decides whether a setting change needs new analyses (rather than new diagnostics). */
export function analysisKey(s: Settings): string {
  const o = analysisOptions(s);
  return `${o.p}\0${o.activation}`;
}

export function scanKey(s: Settings): string {
  return JSON.stringify([includeGlobs(s), s.exclude]);
}
