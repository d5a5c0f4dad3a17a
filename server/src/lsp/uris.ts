// Paths and the URIs clients use for them: a checkpoint's `file:` URI and its listing's.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fileUriOfListing, listingUriOf } from '../contract/listing';

export function fileUriOf(path: string): string {
  return pathToFileURL(path).href;
}

export function listingUriOfPath(path: string): string {
  return listingUriOf(fileUriOf(path));
}

/**
 * The checkpoint path a `file:` or listing URI names. Clients may re-encode URIs (VS Code
 * escapes ':' in drive letters, for one), so lookups go through paths, never URI strings.
 */
export function pathOfUri(uri: string): string | undefined {
  const file = uri.startsWith('file:') ? uri : fileUriOfListing(uri);
  if (!file) return undefined;
  try {
    return fileURLToPath(file);
  } catch {
    return undefined;
  }
}

export function isListingUri(uri: string): boolean {
  return fileUriOfListing(uri) !== undefined;
}
