// The monitor's commands: open it on logs or checkpoint folders, and the built-in demo run
// (dist/demoTrain.js in a child process: three trainings whose logs the monitor follows live).
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { DEMO_RUNS, demoLogName } from '../../../server/src/contract/monitor';
import { MonitorPanel, pickRunSources } from './monitorPanel';

let demo: ChildProcess | undefined;

export async function openMonitor(context: vscode.ExtensionContext, client: () => LanguageClient, arg?: unknown): Promise<void> {
  const given = arg instanceof vscode.Uri ? [arg.fsPath] : [];
  const paths = given.length > 0 ? given : await pickRunSources();
  if (paths.length === 0) return;
  MonitorPanel.show(context, client, paths);
}

export async function startDemoTraining(context: vscode.ExtensionContext, client: () => LanguageClient, output: vscode.OutputChannel): Promise<void> {
  if (demo && demo.exitCode === null) {
    void vscode.window.showInformationMessage('Synaptic Balance: the demo training is already running.');
    return;
  }
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const out = folder?.scheme === 'file' ? path.join(folder.fsPath, '.synbal-demo-train') : path.join(context.globalStorageUri.fsPath, 'demo-train');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const logs = DEMO_RUNS.map((r) => path.join(out, demoLogName(r)));
  const child = fork(context.asAbsolutePath(path.join('dist', 'demoTrain.js')), ['--out', out], { cwd: out, silent: true, execArgv: [] });
  demo = child;
  child.stdout?.on('data', (d: Buffer) => output.appendLine(`[demo training] ${d.toString().trimEnd()}`));
  child.stderr?.on('data', (d: Buffer) => output.appendLine(`[demo training] ${d.toString().trimEnd()}`));
  MonitorPanel.show(context, client, logs);
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Synaptic Balance: demo training (SGD, SGD + L2, balanced start with a large step, the same rebalanced every 100 steps)', cancellable: true },
    (_progress, token) =>
      new Promise<void>((resolve) => {
        token.onCancellationRequested(() => child.kill());
        child.on('exit', (code, signal) => {
          if (code !== 0 && !token.isCancellationRequested) {
            void vscode.window.showErrorMessage(`Synaptic Balance: the demo training stopped (${signal ?? `exit ${code}`}); see the server log.`);
          }
          resolve();
        });
      }),
  );
}

export function stopDemoTraining(): void {
  demo?.kill();
  demo = undefined;
}
