// Palette and explorer commands. Each asks the server (workspace/executeCommand, custom
// requests); none balances anything itself.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient } from 'vscode-languageclient/node';
import { Commands, type BalanceArgs, type BalanceResult, type ReanalyzeArgs } from '../../server/src/contract/requests';
import { balancedFileName } from '../../server/src/contract/output';
import { readSettings } from './config';
import { CommandIds } from './ids';
import { checkpointUriFor, openListing, type ListingProvider } from './shared/listings';
import { listingQuickFix } from './quickFix';
import { reportFailure } from './shared/report';

export interface CommandContext {
  extension: vscode.ExtensionContext;
  client: () => LanguageClient;
  listings: () => ListingProvider;
  output: vscode.OutputChannel;
  restart: () => Promise<void>;
  showWorst: () => Promise<void>;
}

/** The checkpoint a command is about: the explorer's selection, else the active editor's file or listing. */
function targetOf(arg: unknown): vscode.Uri | undefined {
  const uri = arg instanceof vscode.Uri ? arg : vscode.window.activeTextEditor?.document.uri;
  return uri ? checkpointUriFor(uri) : undefined;
}

async function requireTarget(arg: unknown): Promise<vscode.Uri | undefined> {
  const t = targetOf(arg);
  if (t) return t;
  const picked = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Choose checkpoint' });
  return picked?.[0];
}

function executeServerCommand<R>(client: LanguageClient, command: string, args: unknown[]): Promise<R> {
  return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }) as Promise<R>;
}

interface Pick<T> extends vscode.QuickPickItem {
  value: T;
}

async function pickOutput(file: vscode.Uri, inPlaceSetting: boolean): Promise<boolean | undefined> {
  const base = path.basename(file.fsPath);
  // The server's own naming; a file without an extension gets its format's, known only to the server.
  const balanced = path.extname(base) ? balancedFileName(base, '') : `${base}.balanced.<ext>`;
  const items: Pick<boolean>[] = [
    { label: 'New file', description: balanced, detail: 'Write the balanced checkpoint beside the original.', value: false },
    { label: 'In place', description: `${base} (keeps ${base}.bak)`, detail: 'Overwrite the checkpoint; the original is kept as .bak.', value: true },
  ];
  if (inPlaceSetting) items.reverse();
  const r = await vscode.window.showQuickPick(items, { title: 'Balance Network: output', placeHolder: 'Where to write the balanced network' });
  return r?.value;
}

async function pickP(current: number): Promise<number | undefined> {
  const values = [...new Set([current, 1, 2, 3])];
  const items: Pick<number | 'other'>[] = values.map((p) => ({
    label: `p = ${p}`,
    description: p === current ? 'current setting' : 'for this balance only',
    detail: `Regularizer Σ|w|^${p}`,
    value: p,
  }));
  items.push({ label: 'Other…', value: 'other' });
  const r = await vscode.window.showQuickPick(items, { title: 'Balance Network: regularizer', placeHolder: 'Regularizer power p' });
  if (!r) return undefined;
  if (r.value !== 'other') return r.value;
  const s = await vscode.window.showInputBox({
    title: 'Regularizer power p',
    value: String(current),
    validateInput: (v) => (Number.isFinite(Number(v)) && Number(v) > 0 ? undefined : 'p must be a positive number'),
  });
  return s === undefined ? undefined : Number(s);
}

function describe(r: BalanceResult): string {
  const out = r.output ? vscode.Uri.parse(r.output).fsPath : r.file;
  const parts = [`Balanced ${path.basename(out)}`];
  if (r.RBefore !== undefined && r.RAfter !== undefined) parts.push(`R ${r.RBefore.toPrecision(6)} → ${r.RAfter.toPrecision(6)}`);
  if (r.maxRelativeDeficitAfter !== undefined) parts.push(`max relative deficit ${r.maxRelativeDeficitAfter.toExponential(2)}`);
  if (r.verificationSkipped) parts.push(`forward-pass check skipped: ${r.verificationSkipped}`);
  return parts.join('; ');
}

/** The example the walkthrough starts from: a small ONNX CNN made by PyTorch (see server/examples). */
const EXAMPLE_MODEL = 'server/examples/cnn_bn.onnx';

/** Into the workspace (so it joins Problems and the status bar), else the extension's storage. */
function exampleTarget(context: vscode.ExtensionContext): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const base = folder && folder.scheme === 'file' ? vscode.Uri.joinPath(folder, 'synbal-example') : vscode.Uri.joinPath(context.globalStorageUri, 'example');
  return vscode.Uri.joinPath(base, path.basename(EXAMPLE_MODEL));
}

export function registerCommands(context: vscode.ExtensionContext, c: CommandContext): void {
  // Also run from the summary page and other commands, where VS Code shows no error of its own.
  const reg = (id: string, fn: (...args: unknown[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, (...args: unknown[]) => reportFailure(id.replace('synapticBalance.', ''), () => fn(...args))));

  reg(CommandIds.openListing, async (arg) => {
    const file = await requireTarget(arg);
    if (file) await openListing(file);
  });

  reg(CommandIds.balanceNetwork, async (arg) => {
    const file = await requireTarget(arg);
    if (!file) return;
    const settings = readSettings(vscode, file);
    const inPlace = await pickOutput(file, settings.inPlace);
    if (inPlace === undefined) return;
    const p = await pickP(settings.regularizerP);
    if (p === undefined) return;
    // Another p is passed with this request only: the setting (and every checkpoint's analysis) stays.
    const args: BalanceArgs = { file: file.toString(), scope: { kind: 'network' }, inPlace, ...(p !== settings.regularizerP ? { regularizerP: p } : {}) };
    try {
      const r = await executeServerCommand<BalanceResult | null>(c.client(), Commands.balance, [args]);
      if (!r || r.cancelled) {
        void vscode.window.showInformationMessage('Synaptic Balance: balancing cancelled; nothing written.');
        return;
      }
      const choice = await vscode.window.showInformationMessage(describe(r), 'Open Listing');
      if (choice && r.output) await openListing(vscode.Uri.parse(r.output));
    } catch (e) {
      void vscode.window.showErrorMessage(`Synaptic Balance: ${e instanceof Error ? e.message : String(e)}`);
    }
  });

  reg(CommandIds.checkBalance, async (arg) => {
    const file = await requireTarget(arg);
    if (!file) return;
    const args: ReanalyzeArgs = { file: file.toString() };
    await executeServerCommand<null>(c.client(), Commands.reanalyze, [args]);
    await openListing(file);
  });

  reg(CommandIds.openExample, async () => {
    const example = exampleTarget(c.extension);
    mkdirSync(path.dirname(example.fsPath), { recursive: true });
    if (!existsSync(example.fsPath)) copyFileSync(c.extension.asAbsolutePath(EXAMPLE_MODEL), example.fsPath);
    await openListing(example);
  });

  reg(CommandIds.quickFix, () => listingQuickFix());
  reg(CommandIds.showWorstListing, () => c.showWorst());
  reg(CommandIds.restartServer, () => c.restart());
  reg(CommandIds.showOutput, () => c.output.show(true));
}
