// Listing documents: a TextDocumentContentProvider for the `synbal-listing` scheme, filled by
// the server's `synbal/listing` request and refreshed on `synbal/listingChanged`.
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { fileUriOfListing, LISTING_LANGUAGE_ID, LISTING_SCHEME, listingUriOf } from '../../../server/src/contract/listing';
import { ListingChangedNotification, ListingRequest, type ListingChangedParams, type ListingParams, type ListingResult } from '../../../server/src/contract/requests';

export class ListingProvider implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly listeners = new Set<(p: ListingChangedParams) => void>();
  private readonly disposables: vscode.Disposable[] = [];
  readonly onDidChange = this.changed.event;

  constructor(private readonly client: LanguageClient) {
    this.disposables.push(
      this.changed,
      client.onNotification(ListingChangedNotification.method, (p: ListingChangedParams) => {
        this.changed.fire(vscode.Uri.parse(p.uri));
        for (const l of this.listeners) l(p);
      }),
    );
  }

  async provideTextDocumentContent(uri: vscode.Uri, token: vscode.CancellationToken): Promise<string> {
    const params: ListingParams = { uri: uri.toString() };
    const r = await this.client.sendRequest<ListingResult>(ListingRequest.method, params, token);
    return r.text;
  }

  /** Calls `listener` on every `synbal/listingChanged` until the returned disposable is disposed. */
  onListingChanged(listener: (p: ListingChangedParams) => void): vscode.Disposable {
    this.listeners.add(listener);
    return new vscode.Disposable(() => this.listeners.delete(listener));
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this.listeners.clear();
  }
}

/** The listing URI of a checkpoint (or of a listing URI, itself). */
export function listingUriFor(uri: vscode.Uri): vscode.Uri {
  if (uri.scheme === LISTING_SCHEME) return uri;
  return vscode.Uri.parse(listingUriOf(uri.toString()));
}

/** The checkpoint's `file:` URI of a checkpoint or listing URI. */
export function checkpointUriFor(uri: vscode.Uri): vscode.Uri | undefined {
  if (uri.scheme === 'file') return uri;
  if (uri.scheme !== LISTING_SCHEME) return undefined;
  const f = fileUriOfListing(uri.toString());
  return f === undefined ? undefined : vscode.Uri.parse(f);
}

/** Gives listing documents their language (and so the grammar), however they were opened. */
export async function ensureListingLanguage(doc: vscode.TextDocument): Promise<vscode.TextDocument> {
  if (doc.uri.scheme !== LISTING_SCHEME || doc.languageId === LISTING_LANGUAGE_ID) return doc;
  return vscode.languages.setTextDocumentLanguage(doc, LISTING_LANGUAGE_ID);
}

export async function openListing(uri: vscode.Uri, options: vscode.TextDocumentShowOptions = {}): Promise<vscode.TextEditor> {
  const doc = await ensureListingLanguage(await vscode.workspace.openTextDocument(listingUriFor(uri)));
  return vscode.window.showTextDocument(doc, { preview: false, ...options });
}

export function registerListings(context: vscode.ExtensionContext, client: LanguageClient): ListingProvider {
  const provider = new ListingProvider(client);
  context.subscriptions.push(
    provider,
    vscode.workspace.registerTextDocumentContentProvider(LISTING_SCHEME, provider),
    vscode.workspace.onDidOpenTextDocument((doc) => void ensureListingLanguage(doc)),
  );
  for (const doc of vscode.workspace.textDocuments) void ensureListingLanguage(doc);
  return provider;
}
