// The language client: `dist/server.js` (bundled beside this extension's own bundle) over
// Node IPC, attached to listing documents. Settings are pulled by the server through
// workspace/configuration and also passed as initializationOptions.
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { LISTING_SCHEME } from '../../server/src/contract/listing';
import { readSettings, SETTINGS_SECTION } from './config';
import { pythonExtensionInterpreter } from './pythonInterpreter';

export const CLIENT_ID = 'synapticBalance';
export const CLIENT_NAME = 'Synaptic Balance';

export function createClient(context: vscode.ExtensionContext, output: vscode.LogOutputChannel): LanguageClient {
  const module = context.asAbsolutePath('dist/server.js');
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6019'] } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: LISTING_SCHEME }],
    synchronize: { configurationSection: SETTINGS_SECTION },
    initializationOptions: { settings: readSettings(vscode) },
    outputChannel: output,
    middleware: {
      workspace: {
        // An empty `python` setting means "the Python extension's interpreter": filled in here,
        // since the server cannot ask that extension itself.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (!Array.isArray(result)) return result;
          const needs = params.items.some((item, i) => item.section === SETTINGS_SECTION && isEmptyPython(result[i]));
          const scope = params.items.find((item) => item.section === SETTINGS_SECTION)?.scopeUri;
          const python = needs ? await pythonExtensionInterpreter(scope ? vscode.Uri.parse(scope) : undefined) : '';
          return result.map((r, i) => (python && params.items[i].section === SETTINGS_SECTION && isEmptyPython(r) ? { ...(r as object), python } : r));
        },
      },
    },
  };
  return new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
}

function isEmptyPython(section: unknown): boolean {
  if (!section || typeof section !== 'object') return false;
  const p = (section as { python?: unknown }).python;
  return p === undefined || (typeof p === 'string' && p.trim() === '');
}

/**
 * The library registers its own `workspace/textDocumentContent` provider for the schemes the
 * server names; ours (listings.ts) also follows `synbal/listingChanged`, so the library's is
 * dropped to leave one provider per scheme.
 */
export function dropLibraryContentProvider(client: LanguageClient): void {
  const feature = (client as unknown as { getFeature(method: string): { clear?(): void } | undefined }).getFeature('workspace/textDocumentContent');
  feature?.clear?.();
}
