// Typed settings: VS Code's `synapticBalance.*` configuration mapped onto the server's
// `Settings`, checked by the same table and function as the server's (contract/settings.ts).
// Values of the wrong type fall back to the defaults, so a typo in settings.json never reaches
// the server. Type-only use of `vscode`: tests import this module.
/// <reference types="vscode" />
import type * as vscode from 'vscode';
import { checkSettings, SETTING_NAMES, SETTINGS_SECTION, type Settings } from '../../server/src/contract/settings';

/** The part of `WorkspaceConfiguration` this module reads. */
export type ConfigSource = Pick<vscode.WorkspaceConfiguration, 'get'>;

/** The server's settings from a `synapticBalance` configuration section (an empty `python` is filled in by client.ts). */
export function settingsFrom(config: ConfigSource): Settings {
  return checkSettings(Object.fromEntries(SETTING_NAMES.map((k) => [k, config.get<unknown>(k)])));
}

/** The current settings (the `vscode` module is passed in so this file stays importable without it). */
export function readSettings(api: typeof vscode, scope?: vscode.ConfigurationScope): Settings {
  return settingsFrom(api.workspace.getConfiguration(SETTINGS_SECTION, scope));
}

export { SETTINGS_SECTION };
