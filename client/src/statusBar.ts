// The status bar item: the workspace summary from `synbal/checkpoints`, a spinner while
// analysing; clicking opens the worst listing.
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { CheckpointsRequest, type CheckpointInfo } from '../../server/src/contract/requests';
import { CommandIds } from './ids';
import { openListing, type ListingProvider } from './shared/listings';
import { statusText, summarize, summaryText, type Summary } from './summary';

const REFRESH_DELAY_MS = 300;

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('synapticBalance.summary', vscode.StatusBarAlignment.Left, 10);
  private timer: ReturnType<typeof setTimeout> | undefined;
  private last: Summary | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly client: LanguageClient, listings: ListingProvider) {
    this.item.name = 'Synaptic Balance';
    this.item.command = CommandIds.showWorstListing;
    this.item.text = '$(sync~spin) Synaptic Balance';
    this.item.tooltip = 'Synaptic Balance: starting…';
    this.item.show();
    this.subscription = listings.onListingChanged(() => this.schedule());
    this.schedule();
  }

  /** Asks the server again shortly (listing changes come in bursts). */
  schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, REFRESH_DELAY_MS);
  }

  async refresh(): Promise<void> {
    try {
      const list = await this.client.sendRequest<CheckpointInfo[]>(CheckpointsRequest.method, {});
      const s = summarize(list);
      this.last = s;
      // The walkthrough's first step completes once the workspace holds a checkpoint.
      void vscode.commands.executeCommand('setContext', 'synapticBalance.hasCheckpoints', s.checkpoints > 0);
      this.item.text = statusText(s);
      this.item.tooltip = s.worst ? `${summaryText(s)}\nClick to open the worst listing: ${vscode.Uri.parse(s.worst.fileUri).fsPath}` : summaryText(s);
      // Keep polling while analyses are under way (the server also notifies, this is a fallback).
      if (s.busy > 0) this.schedule();
    } catch {
      this.item.text = '$(error) Synaptic Balance';
      this.item.tooltip = 'Synaptic Balance: the language server is not answering';
    }
  }

  async showWorst(): Promise<void> {
    await this.refresh();
    const worst = this.last?.worst;
    if (!worst) {
      void vscode.window.showInformationMessage('Synaptic Balance: no checkpoints in this workspace yet.');
      return;
    }
    await openListing(vscode.Uri.parse(worst.fileUri));
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.subscription.dispose();
    this.item.dispose();
  }
}
