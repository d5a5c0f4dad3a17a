// Typed settings: VS Code's `synapticBalance.*` configuration mapped onto the server's
// `Settings` (protocol.ts). Values of the wrong type fall back to the defaults, so a typo in
// settings.json never reaches the server. Type-only use of `vscode`: tests import this module.
/// <reference types="vscode" />
import type * as vscode from 'vscode';
import { DEFAULT_SETTINGS, DEVICE_SETTINGS, SETTINGS_SECTION, type DeviceSetting, type SeverityName, type Settings } from '../../server/src/protocol';

const SEVERITIES: readonly SeverityName[] = ['error', 'warning', 'information', 'hint'];

/** The part of `WorkspaceConfiguration` this module reads. */
export type ConfigSource = Pick<vscode.WorkspaceConfiguration, 'get'>;

function positive(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fallback;
}

function nonNegative(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fallback;
}

function strings(v: unknown, fallback: readonly string[]): string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string') ? [...v] : [...fallback];
}

/** The server's settings from a `synapticBalance` configuration section (an empty `python` is filled in by client.ts). */
export function settingsFrom(config: ConfigSource): Settings {
  const d = DEFAULT_SETTINGS;
  const severity = config.get<unknown>('severity');
  const inPlace = config.get<unknown>('inPlace');
  const activation = config.get<unknown>('activation');
  const device = config.get<unknown>('device');
  const python = config.get<unknown>('python');
  return {
    regularizerP: positive(config.get<unknown>('regularizerP'), d.regularizerP),
    tolerance: nonNegative(config.get<unknown>('tolerance'), d.tolerance),
    severity: SEVERITIES.includes(severity as SeverityName) ? (severity as SeverityName) : d.severity,
    inPlace: typeof inPlace === 'boolean' ? inPlace : d.inPlace,
    include: strings(config.get<unknown>('include'), d.include),
    exclude: strings(config.get<unknown>('exclude'), d.exclude),
    maxDiagnosticsPerLayer: Math.floor(nonNegative(config.get<unknown>('maxDiagnosticsPerLayer'), d.maxDiagnosticsPerLayer)),
    activation: typeof activation === 'string' ? activation : d.activation,
    pollIntervalMs: positive(config.get<unknown>('pollIntervalMs'), d.pollIntervalMs),
    settleMs: nonNegative(config.get<unknown>('settleMs'), d.settleMs),
    device: DEVICE_SETTINGS.includes(device as DeviceSetting) ? (device as DeviceSetting) : d.device,
    python: typeof python === 'string' && python.trim() !== '' ? python.trim() : d.python,
  };
}

/** The current settings (the `vscode` module is passed in so this file stays importable without it). */
export function readSettings(api: typeof vscode, scope?: vscode.ConfigurationScope): Settings {
  return settingsFrom(api.workspace.getConfiguration(SETTINGS_SECTION, scope));
}

export { SETTINGS_SECTION };
