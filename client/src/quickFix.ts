// Ctrl+. on a listing. VS Code's own Quick Fix command (and its light bulb) needs a writable
// editor, and listings are read-only documents, so the same key opens the server's code
// actions for the cursor's line in a quick pick and runs the one chosen.
import * as vscode from 'vscode';
import { LISTING_SCHEME } from '../../server/src/contract/listing';

interface FixPick extends vscode.QuickPickItem {
  action: vscode.CodeAction | vscode.Command;
}

function commandOf(a: vscode.CodeAction | vscode.Command): vscode.Command | undefined {
  return 'command' in a && typeof a.command === 'string' ? (a as vscode.Command) : (a as vscode.CodeAction).command;
}

export async function listingQuickFix(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.uri.scheme !== LISTING_SCHEME) {
    // Anywhere else VS Code's own command applies.
    await vscode.commands.executeCommand('editor.action.quickFix');
    return;
  }
  const line = editor.document.lineAt(editor.selection.active.line).range;
  // Resolving fills in each action's command (and the exact ΔR in its title).
  const actions =
    (await vscode.commands.executeCommand<(vscode.CodeAction | vscode.Command)[]>('vscode.executeCodeActionProvider', editor.document.uri, line, vscode.CodeActionKind.QuickFix.value, 20)) ?? [];
  const ours = actions.filter((a) => commandOf(a));
  if (ours.length === 0) {
    void vscode.window.showInformationMessage('Synaptic Balance: nothing to fix on this line (put the cursor on a layer or unit that is out of balance).');
    return;
  }
  const items: FixPick[] = ours
    .map((action) => ({ label: `$(lightbulb) ${action.title}`, action, preferred: 'isPreferred' in action && action.isPreferred === true }))
    .sort((a, b) => Number(b.preferred) - Number(a.preferred))
    .map(({ label, action }) => ({ label, action }));
  const picked = await vscode.window.showQuickPick(items, { title: 'Synaptic Balance: Quick Fix', placeHolder: `Line ${line.start.line + 1}: choose a fix` });
  const cmd = picked && commandOf(picked.action);
  if (cmd) await vscode.commands.executeCommand(cmd.command, ...(cmd.arguments ?? []));
}
