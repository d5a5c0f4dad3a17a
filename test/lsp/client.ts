// A real JSON-RPC client for the bundled server (node dist/server.js --stdio): it records what
// the server pushes (diagnostics, listing changes, messages, documents to show, progress) and
// answers the server's own requests the way an editor would.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigurationRequest,
  createProtocolConnection,
  InitializeRequest,
  InitializedNotification,
  PublishDiagnosticsNotification,
  ShowDocumentRequest,
  ShowMessageNotification,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgressCreateRequest,
  type ClientCapabilities,
  type Diagnostic,
  type ProtocolConnection,
  type ShowMessageParams,
} from 'vscode-languageserver-protocol/node';
import { ListingChangedNotification, ListingRequest, type ListingChangedParams, type ListingResult } from '../../server/src/contract/requests';
import { type Settings } from '../../server/src/contract/settings';

export const SERVER = join(__dirname, '..', '..', 'dist', 'server.js');

/** Fast polling, so tests need not wait for the defaults' two seconds. */
export const FAST: Partial<Settings> = { pollIntervalMs: 100, settleMs: 150 };

export const CAPABILITIES: ClientCapabilities = {
  workspace: { configuration: true, workspaceFolders: true, textDocumentContent: {} },
  window: { workDoneProgress: true, showDocument: { support: true } },
  textDocument: {
    codeAction: {
      resolveSupport: { properties: ['edit', 'command'] },
      dataSupport: true,
      codeActionLiteralSupport: { codeActionKind: { valueSet: ['quickfix', 'source', 'source.fixAll'] } },
    },
    documentSymbol: { hierarchicalDocumentSymbolSupport: true },
    publishDiagnostics: { relatedInformation: true },
  },
};

export interface StartOptions {
  root: string;
  settings?: Partial<Settings>;
  env?: Record<string, string>;
  capabilities?: ClientCapabilities;
}

export class TestClient {
  readonly diagnostics = new Map<string, Diagnostic[]>();
  readonly listingChanges: ListingChangedParams[] = [];
  readonly messages: ShowMessageParams[] = [];
  readonly shown: string[] = [];
  readonly progress: { token: string | number; value: { kind: string; percentage?: number; message?: string } }[] = [];
  settings: Partial<Settings>;
  private waiters: (() => void)[] = [];
  stderr = '';

  private constructor(
    readonly conn: ProtocolConnection,
    readonly proc: ChildProcess,
    settings: Partial<Settings>,
  ) {
    this.settings = settings;
  }

  static async start(opts: StartOptions): Promise<TestClient> {
    const proc = spawn(process.execPath, [SERVER, '--stdio'], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const conn = createProtocolConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    const c = new TestClient(conn, proc, { ...FAST, ...opts.settings });
    proc.stderr!.on('data', (d: Buffer) => (c.stderr += d.toString()));
    conn.onNotification(PublishDiagnosticsNotification.type, (p) => {
      c.diagnostics.set(p.uri, p.diagnostics);
      c.wake();
    });
    conn.onNotification(ListingChangedNotification.method, (p: ListingChangedParams) => {
      c.listingChanges.push(p);
      c.wake();
    });
    conn.onNotification(ShowMessageNotification.type, (p) => {
      c.messages.push(p);
      c.wake();
    });
    conn.onRequest(ConfigurationRequest.type, (p) => p.items.map(() => c.settings));
    conn.onRequest(WorkDoneProgressCreateRequest.type, () => undefined);
    conn.onRequest(ShowDocumentRequest.type, (p) => {
      c.shown.push(p.uri);
      c.wake();
      return { success: true };
    });
    conn.onRequest('client/registerCapability', () => null);
    conn.onRequest('workspace/textDocumentContent/refresh', () => null);
    conn.onNotification('$/progress', (p: { token: string | number; value: { kind: string; percentage?: number; message?: string } }) => {
      c.progress.push(p);
      c.wake();
    });
    conn.onNotification('window/logMessage', () => undefined);
    conn.listen();
    const rootUri = pathToFileURL(opts.root).href;
    await conn.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri,
      workspaceFolders: [{ uri: rootUri, name: 'workspace' }],
      capabilities: opts.capabilities ?? CAPABILITIES,
    });
    await conn.sendNotification(InitializedNotification.type, {});
    return c;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `pred` holds (checked after each message from the server), or fails after `ms`. */
  async waitFor<T>(what: string, pred: () => T | undefined | false, ms = 15000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; server stderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits until the checkpoint's listing reached a final state (analysed or failed) after `since` changes. */
  async settled(fileUri: string, since = 0, ms = 15000): Promise<ListingChangedParams> {
    return this.waitFor(
      `a final state of ${fileUri}`,
      () => this.listingChanges.slice(since).reverse().find((p) => p.fileUri === fileUri && (p.state === 'analysed' || p.state === 'failed')),
      ms,
    );
  }

  listing(uri: string): Promise<ListingResult> {
    return this.conn.sendRequest(ListingRequest.method, { uri });
  }

  async stop(): Promise<void> {
    try {
      await Promise.race([this.conn.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 2000))]);
      await this.conn.sendNotification('exit');
    } catch {
      // already gone
    }
    this.conn.dispose();
    const exited = new Promise((r) => this.proc.once('exit', r));
    setTimeout(() => this.proc.kill('SIGKILL'), 3000).unref();
    if (this.proc.exitCode === null) await exited;
  }
}

/** A diagnostic's message or a hover's contents as text (LSP 3.18 allows markup for both). */
export function textOf(m: string | { value: string } | unknown): string {
  return typeof m === 'string' ? m : (m as { value: string }).value;
}

export function fileUri(path: string): string {
  return pathToFileURL(path).href;
}
