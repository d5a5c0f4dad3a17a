// The Training Monitor webview panel: the page from webview/ (strict CSP with a nonce, only
// dist/webview readable), runs from the RunHub, and the requests only the editor can serve
// (open a listing at a unit, save an export, pick another run). Survives a window reload
// through a WebviewPanelSerializer and the page's saved MonitorViewState.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { MONITOR_VIEW_TYPE, type MonitorViewMessage, type MonitorViewState } from '../../../server/src/contract/monitor';
import { CheckpointCostsRequest, type CheckpointCostsResult } from '../../../server/src/contract/requests';
import { makeNonce, monitorHtml } from '../../../webview/src/html';
import { findUnit } from '../../../server/src/contract/listing';
import { openListing } from '../shared/listings';
import { reportFailure } from '../shared/report';
import { RunHub, type RunSpec } from './runHub';

const TITLE = 'Synaptic Balance: Training Monitor';

export class MonitorPanel implements vscode.Disposable {
  private static current: MonitorPanel | undefined;
  private readonly hub: RunHub;
  private readonly subscriptions: vscode.Disposable[] = [];

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    context: vscode.ExtensionContext,
    client: () => LanguageClient,
    sources: readonly RunSpec[],
  ) {
    const root = vscode.Uri.joinPath(context.extensionUri, 'dist', 'webview');
    panel.webview.options = { enableScripts: true, localResourceRoots: [root] };
    this.hub = new RunHub({
      post: (m) => void panel.webview.postMessage(m),
      costsOf: (file) => client().sendRequest<CheckpointCostsResult>(CheckpointCostsRequest.method, { uri: vscode.Uri.file(file).toString() }),
    });
    for (const s of sources) this.hub.add(s);
    panel.webview.html = monitorHtml({
      scriptUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(root, 'monitor.js')).toString(),
      styleUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(root, 'monitor.css')).toString(),
      cspSource: panel.webview.cspSource,
      nonce: makeNonce(),
      title: TITLE,
    });
    this.subscriptions.push(panel.webview.onDidReceiveMessage((m: MonitorViewMessage) => void reportFailure(`training monitor (${m?.type})`, () => this.onMessage(m))));
    panel.onDidDispose(() => this.dispose());
  }

  /** Shows the panel (creating it once) and adds the given logs or folders as runs. */
  static show(context: vscode.ExtensionContext, client: () => LanguageClient, paths: readonly string[]): MonitorPanel {
    const specs = paths.map((p) => RunHub.specOf(p));
    if (MonitorPanel.current) {
      for (const s of specs) MonitorPanel.current.hub.add(s);
      MonitorPanel.current.panel.reveal();
      return MonitorPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(MONITOR_VIEW_TYPE, TITLE, vscode.ViewColumn.Active, { enableScripts: true, retainContextWhenHidden: false });
    MonitorPanel.current = new MonitorPanel(panel, context, client, specs);
    return MonitorPanel.current;
  }

  static register(context: vscode.ExtensionContext, client: () => LanguageClient): void {
    context.subscriptions.push(
      vscode.window.registerWebviewPanelSerializer(MONITOR_VIEW_TYPE, {
        deserializeWebviewPanel: async (panel, state: MonitorViewState | undefined) => {
          MonitorPanel.current?.dispose();
          MonitorPanel.current = new MonitorPanel(panel, context, client, state?.sources ?? []);
        },
      }),
    );
  }

  private async onMessage(m: MonitorViewMessage): Promise<void> {
    switch (m.type) {
      case 'openUnit':
        return this.openUnit(m.runId, m.index, m.layer, m.unit);
      case 'exportPng':
        return this.save(m.suggestedName, { 'PNG image': ['png'] }, m.png);
      case 'exportCsv':
        return this.save(m.suggestedName, { 'CSV table': ['csv'] }, new TextEncoder().encode(m.csv));
      case 'addRun': {
        const picked = await pickRunSources();
        for (const p of picked) this.hub.add(RunHub.specOf(p));
        return;
      }
      default:
        return this.hub.handle(m);
    }
  }

  private async openUnit(runId: string, index: number, layer: string, unit: number): Promise<void> {
    const frame = await this.hub.frameOf(runId, index).catch(() => undefined);
    if (!frame?.checkpoint) return;
    const editor = await openListing(vscode.Uri.parse(frame.checkpoint), { viewColumn: vscode.ViewColumn.Beside });
    // The listing's layout (server/src/contract/listing.ts): a layer's heading, then one line per unit.
    const doc = editor.document;
    const place = findUnit(doc.lineCount, (i) => doc.lineAt(i).text, layer, unit);
    if (place) {
      const at = new vscode.Range(place.line, place.start, place.line, place.end);
      editor.selection = new vscode.Selection(at.start, at.end);
      editor.revealRange(at, vscode.TextEditorRevealType.InCenter);
      return;
    }
    void vscode.window.showInformationMessage(`Synaptic Balance: ${layer}#${unit} is not in the listing of ${path.basename(doc.uri.path)}.`);
  }

  private async save(suggested: string, filters: Record<string, string[]>, bytes: Uint8Array): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const target = await vscode.window.showSaveDialog({ defaultUri: folder ? vscode.Uri.joinPath(folder, suggested) : undefined, filters, title: `Export ${suggested}` });
    if (!target) return;
    await vscode.workspace.fs.writeFile(target, bytes);
    void vscode.window.showInformationMessage(`Synaptic Balance: saved ${path.basename(target.fsPath)}`);
  }

  dispose(): void {
    if (MonitorPanel.current === this) MonitorPanel.current = undefined;
    this.hub.dispose();
    for (const s of this.subscriptions) s.dispose();
    this.panel.dispose();
  }
}

/** Logs (`*.jsonl`) or checkpoint folders the user picks. */
export async function pickRunSources(): Promise<string[]> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: true,
    canSelectFiles: true,
    canSelectFolders: true,
    openLabel: 'Monitor',
    title: 'Balance logs (.jsonl) or folders of checkpoints',
    filters: { 'Balance logs': ['jsonl', 'log', 'json'], 'All files': ['*'] },
  });
  return (picked ?? []).map((u) => u.fsPath);
}
