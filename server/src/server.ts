// synbal-lsp: the language server. This file only wires LSP messages to the modules in lsp/.
import { join } from 'node:path';
import {
  CodeActionKind,
  DidChangeConfigurationNotification,
  MessageType,
  ProposedFeatures,
  ShowMessageNotification,
  TextDocumentSyncKind,
  createConnection,
  type CancellationToken,
  type Connection,
  type GenericRequestHandler,
  type InitializeParams,
  type InitializeResult,
} from 'vscode-languageserver/node';
import { codeActions, resolveCodeAction } from './lsp/codeActions';
import { executeCommand } from './lsp/commands';
import { hover } from './lsp/hover';
import { codeLenses } from './lsp/lenses';
import { checkpointCosts } from './lsp/checkpointCosts';
import { checkpoints, listing } from './lsp/listingRequest';
import { Session, clientFeatures } from './lsp/session';
import { normalizeSettings } from './lsp/settings';
import { documentSymbols, foldingRanges } from './lsp/symbols';
import { pathOfUri } from './lsp/uris';
import { FIX_ALL_KIND } from './contract/diagnostics';
import { LISTING_SCHEME } from './contract/listing';
import { CheckpointCostsRequest, CheckpointsRequest, Commands, ListingRequest, type RequestDef } from './contract/requests';
import { SETTINGS_SECTION, type Settings } from './contract/settings';

const VERSION = process.env.SYNBAL_VERSION ?? 'dev';

const USAGE = `synbal-lsp ${VERSION} — the Synaptic Balance language server

usage: synbal-lsp --stdio | --node-ipc | --socket=PORT | --pipe=NAME

It analyses every checkpoint under the client's workspace folders and publishes diagnostics;
see server/src/lsp/README.md for the protocol and an editor setup.
`;

function onRequest<P, R>(connection: Connection, def: RequestDef<P, R>, handler: (params: P, token: CancellationToken) => R | Promise<R>): void {
  // The definition carries the types; the library's generic overloads cannot see through them.
  connection.onRequest(def.method, handler as unknown as GenericRequestHandler<unknown, unknown>);
}

function rootsOf(params: InitializeParams): string[] {
  const uris = params.workspaceFolders?.map((f) => f.uri) ?? (params.rootUri ? [params.rootUri] : []);
  const roots = uris.map(pathOfUri).filter((p): p is string => p !== undefined);
  if (roots.length === 0 && params.rootPath) roots.push(params.rootPath);
  return roots;
}

function main(argv: string[]): void {
  if (argv.includes('--version')) return void process.stdout.write(`synbal-lsp ${VERSION}\n`);
  if (argv.includes('--help') || !argv.some((a) => /^--(stdio|node-ipc|socket|pipe)/.test(a))) {
    process.stderr.write(USAGE);
    process.exitCode = argv.includes('--help') ? 0 : 2;
    return;
  }
  const connection = createConnection(ProposedFeatures.all);
  // Tests and the latency benchmark substitute a worker that also opens synthetic models.
  const workerScript = process.env.SYNBAL_LSP_WORKER ?? join(__dirname, 'lspWorker.js');
  let session: Session | undefined;
  let roots: string[] = [];
  const s = () => {
    if (!session) throw new Error('the server is not initialized yet');
    return session;
  };

  // Settings from initializationOptions, for clients without workspace/configuration.
  let initialSettings: unknown;
  const warn = (message: string) => void connection.sendNotification(ShowMessageNotification.type, { type: MessageType.Warning, message });
  const fetchSettings = async (): Promise<Settings> => {
    const raw = s().features.configuration ? await connection.workspace.getConfiguration(SETTINGS_SECTION) : undefined;
    return normalizeSettings(raw ?? initialSettings, warn);
  };

  connection.onInitialize((params): InitializeResult => {
    session = new Session(connection, clientFeatures(params.capabilities), workerScript);
    roots = rootsOf(params);
    const init = params.initializationOptions as { settings?: unknown } | undefined;
    initialSettings = init?.settings ?? init;
    return {
      capabilities: {
        textDocumentSync: { openClose: false, change: TextDocumentSyncKind.None },
        hoverProvider: true,
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix, FIX_ALL_KIND], resolveProvider: true },
        codeLensProvider: { resolveProvider: false },
        documentSymbolProvider: true,
        foldingRangeProvider: true,
        executeCommandProvider: { commands: [Commands.balance, Commands.reanalyze] },
        workspace: {
          workspaceFolders: { supported: true, changeNotifications: true },
          textDocumentContent: { schemes: [LISTING_SCHEME] },
        },
      },
      serverInfo: { name: 'synbal-lsp', version: VERSION },
    };
  });

  connection.onInitialized(async () => {
    const ses = s();
    if (ses.features.configuration) void connection.client.register(DidChangeConfigurationNotification.type, { section: SETTINGS_SECTION }).catch(() => undefined);
    if (ses.features.workspaceFolders) {
      connection.workspace.onDidChangeWorkspaceFolders((ev) => {
        const gone = new Set(ev.removed.map((f) => pathOfUri(f.uri)));
        const added = ev.added.map((f) => pathOfUri(f.uri)).filter((p): p is string => p !== undefined);
        ses.setRoots([...ses.roots.filter((r) => !gone.has(r)), ...added]);
      });
    }
    ses.applySettings(await fetchSettings().catch(() => normalizeSettings(initialSettings, warn)));
    ses.setRoots(roots);
  });

  connection.onDidChangeConfiguration(async (params) => {
    const ses = s();
    if (ses.features.configuration) ses.applySettings(await fetchSettings());
    else ses.applySettings(normalizeSettings((params.settings as Record<string, unknown> | null)?.[SETTINGS_SECTION] ?? initialSettings, warn));
  });

  connection.onDidChangeWatchedFiles(() => s().watcher.pollNow());
  connection.onHover((p) => hover(s(), p));
  connection.onCodeAction((p) => codeActions(s(), p));
  connection.onCodeActionResolve((a, token) => resolveCodeAction(s(), a, token));
  connection.onCodeLens((p) => codeLenses(s(), p.textDocument.uri));
  connection.onDocumentSymbol((p) => documentSymbols(s(), p.textDocument.uri));
  connection.onFoldingRanges((p) => foldingRanges(s(), p.textDocument.uri));
  connection.onExecuteCommand((p, token, progress) => executeCommand(s(), p, token, progress));
  onRequest(connection, ListingRequest, (p) => listing(s(), p.uri));
  onRequest(connection, CheckpointsRequest, () => checkpoints(s()));
  onRequest(connection, CheckpointCostsRequest, (p, token) => checkpointCosts(s(), p, token));
  connection.workspace.textDocumentContent.on(async (p) => {
    const r = await listing(s(), p.uri);
    const path = pathOfUri(p.uri);
    if (path !== undefined) s().fetched.add(path);
    return { text: r.text };
  });
  connection.onShutdown(() => session?.dispose());
  connection.listen();
}

main(process.argv.slice(2));
