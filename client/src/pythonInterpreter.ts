// The interpreter chosen in the VS Code Python extension (ms-python.python), for the torch
// compute backend when `synapticBalance.python` is empty. Both of the extension's APIs are
// read: `environments` (current) and `settings.getExecutionDetails` (older releases).
import * as vscode from 'vscode';

const PYTHON_EXTENSION = 'ms-python.python';

interface PythonApi {
  environments?: {
    getActiveEnvironmentPath?(resource?: vscode.Uri): { path?: string } | undefined;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
  settings?: { getExecutionDetails?(resource?: vscode.Uri): { execCommand?: string[] } | undefined };
}

/**
 * Its API only when it is already running: activating that large extension from ours would
 * cost every start-up, for users who may never balance on a GPU.
 */
async function api(): Promise<PythonApi | undefined> {
  const ext = vscode.extensions.getExtension<PythonApi>(PYTHON_EXTENSION);
  return ext?.isActive ? ext.exports : undefined;
}

/** The Python extension's interpreter, or '' when it is not installed or has none. */
export async function pythonExtensionInterpreter(resource?: vscode.Uri): Promise<string> {
  const a = await api();
  const fromEnv = a?.environments?.getActiveEnvironmentPath?.(resource)?.path;
  if (fromEnv) return fromEnv;
  return a?.settings?.getExecutionDetails?.(resource)?.execCommand?.[0] ?? '';
}

/** Calls `listener` when the user picks another interpreter in the Python extension. */
export async function onPythonInterpreterChanged(listener: () => void): Promise<vscode.Disposable | undefined> {
  return (await api())?.environments?.onDidChangeActiveEnvironmentPath?.(listener);
}
