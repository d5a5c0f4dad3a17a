// Code lenses on the listing's layer headings: balance this layer, balance the network.
import type { CodeLens } from 'vscode-languageserver';
import { num } from './numbers';
import { balanceCommand } from './codeActions';
import { layerNameRange } from './listing';
import type { Session } from './session';
import { isListingUri } from './uris';

export function codeLenses(session: Session, uri: string): CodeLens[] {
  const e = session.store.byUri(uri);
  const a = e?.analysis;
  const layout = e?.layout;
  if (!e || !a || !layout || !isListingUri(uri)) return [];
  const lenses: CodeLens[] = [];
  a.layers.forEach((l, li) => {
    if (l.role !== 'hidden' || l.balanceable === 0) return;
    const [from, to] = layerNameRange(l);
    const range = { start: { line: layout.layerLine[li], character: from }, end: { line: layout.layerLine[li], character: to } };
    const gain = l.eachDeltaR > 0 ? ` (R −${l.eachExact ? '' : '≈'}${num(l.eachDeltaR)})` : '';
    lenses.push({ range, command: balanceCommand(`Balance layer${gain}`, e, { kind: 'layer', layer: l.name }) });
    lenses.push({ range, command: balanceCommand('Balance network', e, { kind: 'network' }) });
  });
  return lenses;
}
