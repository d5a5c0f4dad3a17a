// Activation: start the language client, then wire listings, commands and the status bar to it.
import * as vscode from 'vscode';
import { DidChangeConfigurationNotification, type LanguageClient } from 'vscode-languageclient/node';
import { registerCheckpointEditor } from './checkpointEditor';
import { CLIENT_NAME, createClient, dropLibraryContentProvider } from './client';
import { registerCommands } from './commands';
import { CommandIds } from './ids';
import { openMonitor, startDemoTraining, stopDemoTraining } from './monitor/monitorCommands';
import { MonitorPanel } from './monitor/monitorPanel';
import { registerListings, type ListingProvider } from './shared/listings';
import { onPythonInterpreterChanged } from './pythonInterpreter';
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

  MonitorPanel.register(context, () => lc);
  context.subscriptions.push(
    vscode.commands.registerCommand(CommandIds.openMonitor, (arg: unknown) => openMonitor(context, () => lc, arg)),
    vscode.commands.registerCommand(CommandIds.demoTraining, () => startDemoTraining(context, () => lc, output)),
    { dispose: stopDemoTraining },
  );

  await lc.start();
  dropLibraryContentProvider(lc);
  // Another interpreter picked in the Python extension: the server asks for its settings again.
  const pythonWatch = await onPythonInterpreterChanged(() => {
    // A stopped server asks for its settings anew when it starts: nothing to tell it now.
    if (lc.isRunning()) lc.sendNotification(DidChangeConfigurationNotification.type, { settings: null }).catch(() => undefined);
  });
  if (pythonWatch) context.subscriptions.push(pythonWatch);
  status.schedule();
}

export async function deactivate(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.stop();
}
