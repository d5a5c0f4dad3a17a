// The listing's outline (layers, and their units as children) and its folding ranges.
import { FoldingRangeKind, SymbolKind, type DocumentSymbol, type FoldingRange } from 'vscode-languageserver';
import { num } from './numbers';
import { layerNameRange, unitLabel, unitLabelRange, unitLine, unitStatus } from './listing';
import type { LayerAnalysis } from '../app/analysis';
import type { Session } from './session';
import { isListingUri } from './uris';

/**
 * Units per layer in the outline. A 4096-unit layer would make an outline nobody scrolls and a
 * response of megabytes; beyond this, the least balanced units are shown (the listing has all).
 */
export const MAX_OUTLINE_UNITS = 1000;

function outlineUnits(l: LayerAnalysis): number[] {
  const all = Array.from({ length: l.units }, (_, u) => u);
  if (l.units <= MAX_OUTLINE_UNITS) return all;
  const rel = l.columns.rel;
  const key = (u: number) => (Number.isNaN(rel[u]) ? -1 : rel[u]);
  return all.sort((a, b) => key(b) - key(a) || a - b).slice(0, MAX_OUTLINE_UNITS).sort((a, b) => a - b);
}

export function documentSymbols(session: Session, uri: string): DocumentSymbol[] {
  const e = session.store.byUri(uri);
  const a = e?.analysis;
  const layout = e?.layout;
  if (!e || !a || !layout || !isListingUri(uri)) return [];
  const tol = session.settings.tolerance;
  return a.layers.map((l, li) => {
    const line = layout.layerLine[li];
    const [from, to] = layerNameRange(l);
    const children: DocumentSymbol[] = [];
    const shown = outlineUnits(l);
    for (const u of shown) {
      const ul = unitLine(layout, li, u);
      const [uf, ut] = unitLabelRange(l, u);
      const rel = l.columns.rel[u];
      const range = { start: { line: ul, character: uf }, end: { line: ul, character: ut } };
      children.push({
        name: unitLabel(l, u),
        detail: Number.isNaN(rel) ? unitStatus(l, u, tol) : `${unitStatus(l, u, tol)}, rel ${num(rel)}`,
        kind: SymbolKind.Field,
        range,
        selectionRange: range,
      });
    }
    return {
      name: l.name,
      detail: `${l.role}, ${l.units} units, ${l.balanceable} balanceable${shown.length < l.units ? ` (outline: the ${shown.length} least balanced)` : ''}`,
      kind: SymbolKind.Module,
      range: { start: { line, character: 0 }, end: { line: line + l.units + 1, character: 0 } },
      selectionRange: { start: { line, character: from }, end: { line, character: to } },
      children,
    };
  });
}

export function foldingRanges(session: Session, uri: string): FoldingRange[] {
  const e = session.store.byUri(uri);
  const a = e?.analysis;
  const layout = e?.layout;
  if (!e || !a || !layout || !isListingUri(uri)) return [];
  const ranges: FoldingRange[] = [];
  if (layout.layerLine.length > 0 && layout.layerLine[0] > 2) ranges.push({ startLine: 0, endLine: layout.layerLine[0] - 2, kind: FoldingRangeKind.Comment });
  a.layers.forEach((l, li) => {
    if (l.units > 0) ranges.push({ startLine: layout.layerLine[li], endLine: layout.layerLine[li] + l.units, kind: FoldingRangeKind.Region });
  });
  return ranges;
}
