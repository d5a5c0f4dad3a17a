// Failures of work started from the UI without anyone awaiting it (webview messages, buttons,
// commands run by other commands): shown to the user instead of vanishing as unhandled rejections.
import * as vscode from 'vscode';

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs `work`; a failure becomes one error message naming what was being done. */
export async function reportFailure(what: string, work: () => unknown): Promise<void> {
  try {
    await work();
  } catch (e) {
    void vscode.window.showErrorMessage(`Synaptic Balance: ${what}: ${messageOf(e)}`);
  }
}
