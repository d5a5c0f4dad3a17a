// Activation: start the language client, then wire listings, commands and the status bar to it.
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { registerCheckpointEditor } from './checkpointEditor';
import { CLIENT_NAME, createClient, dropLibraryContentProvider } from './client';
import { registerCommands } from './commands';
import { registerListings, type ListingProvider } from './listings';
import { StatusBar } from './statusBar';

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel(CLIENT_NAME, { log: true });
  context.subscriptions.push(output);
  const lc = createClient(context, output);
  client = lc;
  const listings: ListingProvider = registerListings(context, lc);
  const status = new StatusBar(lc, listings);
  context.subscriptions.push(status);

  registerCheckpointEditor(context, () => lc, () => listings);
  registerCommands(context, {
    extension: context,
    client: () => lc,
    listings: () => listings,
    output,
    restart: async () => {
      await lc.restart();
      dropLibraryContentProvider(lc);
      status.schedule();
    },
    showWorst: () => status.showWorst(),
  });

  await lc.start();
  dropLibraryContentProvider(lc);
  status.schedule();
}

export async function deactivate(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.stop();
}
