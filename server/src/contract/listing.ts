// Listings: each checkpoint is shown as a read-only text document under its own scheme. This
// module names the scheme, maps URIs both ways, and fixes the parts of the listing's text that
// other programs find their way by: how a layer heading and a unit line begin. The server's
// renderer (server/src/lsp/listing.ts) writes them with these; the client reads them back.

/** URI scheme of listing documents: `synbal-listing:/path/to/model.onnx.listing`. */
export const LISTING_SCHEME = 'synbal-listing';
export const LISTING_SUFFIX = '.listing';
/** Language id the client gives listing documents (its grammar lives in syntaxes/). */
export const LISTING_LANGUAGE_ID = 'synbal-listing';

/**
 * The listing URI of a checkpoint's `file:` URI: the same authority and path under the listing
 * scheme, `.listing` appended (`synbal-listing:///models/m.onnx.listing`). The empty authority
 * is kept: Neovim names a buffer by its URI only when it has `://`. VS Code writes the same
 * URI as `synbal-listing:/models/m.onnx.listing`; both forms name the same listing.
 */
export function listingUriOf(fileUri: string): string {
  if (!fileUri.startsWith('file:')) throw new Error(`not a file: URI: ${fileUri}`);
  return `${LISTING_SCHEME}:${fileUri.slice('file:'.length)}${LISTING_SUFFIX}`;
}

/** The checkpoint's `file:` URI of a listing URI, or undefined when it is not one. */
export function fileUriOfListing(listingUri: string): string | undefined {
  const prefix = `${LISTING_SCHEME}:`;
  if (!listingUri.startsWith(prefix) || !listingUri.endsWith(LISTING_SUFFIX)) return undefined;
  const rest = listingUri.slice(prefix.length, listingUri.length - LISTING_SUFFIX.length);
  return rest.startsWith('//') ? `file:${rest}` : `file://${rest}`;
}

// ---------------------------------------------------------------------------------------
// Text layout: per layer one heading line (`layer NAME  …`), then one line per unit
// (`  NAME#INDEX  …`, unit 0 on the line after the heading), then a blank line.
// ---------------------------------------------------------------------------------------

/** What a layer's heading line starts with, before the layer's name. */
export const LAYER_PREFIX = 'layer ';
/** Columns before a unit line's label. */
export const UNIT_INDENT = 2;

/** A unit's label as the listing writes it: `NAME#INDEX`. */
export function unitLabel(layer: string, unit: number): string {
  return `${layer}#${unit}`;
}

/** The start of a unit line, before its padded label (the label follows at column UNIT_INDENT). */
export function unitLinePrefix(): string {
  return ' '.repeat(UNIT_INDENT);
}

/** Where a unit's label is in a listing's text: its line and columns [start, end). */
export interface UnitPlace {
  line: number;
  start: number;
  end: number;
}

/**
 * Finds unit `unit` of layer `layer` in a listing's lines (`lineAt(i)` for i < lineCount): the
 * layer's heading, then the unit's line `unit + 1` lines below it. Undefined when the layer has
 * no heading, or the line there is not that unit's.
 */
export function findUnit(lineCount: number, lineAt: (i: number) => string, layer: string, unit: number): UnitPlace | undefined {
  const heading = `${LAYER_PREFIX}${layer} `;
  for (let i = 0; i < lineCount; i++) {
    if (!lineAt(i).startsWith(heading)) continue;
    const line = i + 1 + unit;
    const label = unitLabel(layer, unit);
    if (line < lineCount && lineAt(line).startsWith(`${unitLinePrefix()}${label} `)) return { line, start: UNIT_INDENT, end: UNIT_INDENT + label.length };
    return undefined;
  }
  return undefined;
}
