// Settings as the server uses them: whatever the client sent, checked field by field by the
// contract's table (server/src/contract/settings.ts: a bad value falls back to its default,
// with a warning), plus what the server derives from them (globs, devices, analysis keys).
import { FORMATS } from '../formats/registry';
import { checkSettings, type Settings } from '../contract/settings';
import type { AnalysisOptions, ComputeSpec } from './workerProtocol';
import { AUTO_DEVICE_MIN_ELEMENTS } from '../compute/threshold';

/** Settings from any client value (null, partial, wrong types); warnings name each rejected field. */
export function normalizeSettings(raw: unknown, warn: (message: string) => void = () => {}): Settings {
  return checkSettings(raw, warn);
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
