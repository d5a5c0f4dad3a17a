// A read-only custom editor (priority "option": "Open With…") that gives a checkpoint a
// summary page with the same buttons as the explorer's context menu. Diagnostics and quick
// fixes stay on the listing: a custom editor cannot carry ranges.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { CHECKPOINT_EDITOR_VIEW_TYPE, type CheckpointPageAction, type CheckpointPageMessage } from '../../server/src/contract/checkpointPage';
import { CheckpointsRequest, ListingRequest, type CheckpointInfo } from '../../server/src/contract/requests';
import { makeNonce } from '../../webview/src/html';
import { checkpointPageHtml } from './checkpointPage';
import { CommandIds } from './ids';
import type { ListingProvider } from './shared/listings';

const COMMAND_OF: Record<CheckpointPageAction, string> = {
  openListing: CommandIds.openListing,
  balanceNetwork: CommandIds.balanceNetwork,
  checkBalance: CommandIds.checkBalance,
};

export class CheckpointEditorProvider implements vscode.CustomReadonlyEditorProvider {
  constructor(
    private readonly client: () => LanguageClient,
    private readonly listings: () => ListingProvider,
  ) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  async resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): Promise<void> {
    const uri = document.uri;
    panel.webview.options = { enableScripts: true, localResourceRoots: [] };
    let disposed = false;
    const render = async (): Promise<void> => {
      const info = await this.info(uri);
      // The panel may have closed while the server answered.
      if (disposed) return;
      panel.webview.html = checkpointPageHtml({
        fileName: path.basename(uri.fsPath),
        info,
        cspSource: panel.webview.cspSource,
        nonce: makeNonce(),
      });
    };
    const subscriptions = [
      panel.webview.onDidReceiveMessage((m: CheckpointPageMessage) => {
        if (m?.type === 'run' && m.action in COMMAND_OF) void vscode.commands.executeCommand(COMMAND_OF[m.action], uri);
      }),
      this.listings().onListingChanged((p) => {
        if (vscode.Uri.parse(p.fileUri).toString() === uri.toString()) void render();
      }),
    ];
    panel.onDidDispose(() => {
      disposed = true;
      subscriptions.forEach((s) => s.dispose());
    });
    await render();
  }

  /** The server's summary of the file; asking for its listing first makes it analyse a file outside the workspace. */
  private async info(uri: vscode.Uri): Promise<CheckpointInfo | undefined> {
    const find = async () => (await this.client().sendRequest<CheckpointInfo[]>(CheckpointsRequest.method, {})).find((c) => vscode.Uri.parse(c.fileUri).toString() === uri.toString());
    try {
      const found = await find();
      if (found) return found;
      await this.client().sendRequest(ListingRequest.method, { uri: uri.toString() });
      return await find();
    } catch {
      return undefined;
    }
  }
}

export function registerCheckpointEditor(context: vscode.ExtensionContext, client: () => LanguageClient, listings: () => ListingProvider): void {
  context.subscriptions.push(
    vscode.window.registerCustomEditorProvider(CHECKPOINT_EDITOR_VIEW_TYPE, new CheckpointEditorProvider(client, listings), {
      supportsMultipleEditorsPerDocument: true,
    }),
  );
}
