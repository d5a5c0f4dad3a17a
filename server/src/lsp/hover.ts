// Hovers on the listing: a unit's costs, λ*, ΔR, activation and the tensor slices it lives in;
// a layer's totals and fixes; the header's file summary.
import { MarkupKind, type Hover, type HoverParams } from 'vscode-languageserver';
import { num } from './numbers';
import { UNIT_STATUSES, type LayerAnalysis, type TensorSlot } from '../app/analysis';
import { activationText, countAbove, layerNameRange, layerTolerance, placeAt, unitLabel, unitLabelRange } from './listing';
import type { Session } from './session';
import { isListingUri } from './uris';

const MAX_RANGES = 4;

/** The slice of a tensor that holds one unit, in Python index notation: `fc1.weight[3, :]`. */
export function sliceOf(slot: TensorSlot, unit: number, units: number): string {
  const parts: string[] = [];
  let more = false;
  for (let k = 0; ; k++) {
    const block = unit + k * units;
    const from = slot.start + block * slot.inner;
    if (block * slot.inner >= slot.length) break;
    if (parts.length === MAX_RANGES) {
      more = true;
      break;
    }
    const to = Math.min(from + slot.inner, slot.start + slot.length);
    parts.push(to - from === 1 ? String(from) : `${from}:${to}`);
  }
  const index = parts.length === 1 && !more ? parts[0] : `{${parts.join(', ')}${more ? ', …' : ''}}`;
  const dims = slot.shape.map((_, ax) => {
    if (ax === slot.axis) return index;
    const sel = slot.select.find((s) => s.axis === ax);
    return sel ? String(sel.index) : ':';
  });
  return `${slot.tensor}[${dims.join(', ')}]`;
}

function row(name: string, value: string): string {
  return `| ${name} | ${value} |`;
}

function unitHover(session: Session, l: LayerAnalysis, u: number): string {
  const c = l.columns;
  const tol = session.settings.tolerance;
  const status = UNIT_STATUSES[c.status[u]];
  const lines = [`**${unitLabel(l, u)}** — ${l.role} unit, ${activationText(l)}`, '', '| | |', '|---|---|'];
  lines.push(row('incoming cost IN', num(c.in[u])), row('outgoing cost OUT', num(c.out[u])));
  const lt = layerTolerance(l, tol);
  if (!Number.isNaN(c.rel[u])) lines.push(row('relative deficit', `${num(c.rel[u])} (${c.rel[u] > lt ? 'above' : 'within'} tolerance ${num(lt)})`));
  if (!Number.isNaN(c.lambda[u])) lines.push(row('λ* (balancing this unit alone)', num(c.lambda[u])), row('ΔR (decrease of R)', num(c.deltaR[u])));
  if (l.role === 'hidden') lines.push(row('status', c.reason[u] >= 0 ? `${status}: ${l.reasonTexts[c.reason[u]]}` : status));
  const tensors = [
    ...l.incoming.map((s) => `- in: \`${sliceOf(s, u, l.units)}\` (${s.kind === 'bias' ? 'bias' : `${s.kind} from ${s.other}`})`),
    ...l.outgoing.map((s) => `- out: \`${sliceOf(s, u, l.units)}\` (${s.kind} to ${s.other})`),
  ];
  if (tensors.length) lines.push('', 'Lives in:', ...tensors);
  return lines.join('\n');
}

function layerHover(session: Session, l: LayerAnalysis): string {
  const lines = [`**layer ${l.name}** — ${l.role}, ${activationText(l)}`, '', '| | |', '|---|---|'];
  lines.push(row('units', `${l.units} (${l.balanceable} balanceable, ${countAbove(l, session.settings.tolerance)} out of balance)`));
  lines.push(row('IN total / OUT total', `${num(l.inTotal)} / ${num(l.outTotal)}`));
  lines.push(row('relative deficit max / mean', `${num(l.maxRelativeDeficit)} / ${num(l.meanRelativeDeficit)}`));
  if (l.balanceable > 0) lines.push(row('ΔR balancing each unit', `${l.eachExact ? '' : '≈ '}${num(l.eachDeltaR)}`));
  if (l.tied) lines.push(row('tied (one λ)', `λ = ${num(l.tied.lambda)}, ΔR ${num(l.tied.deltaR)}`));
  for (const r of l.reasons) lines.push(row('not balanceable', `${r.units}: ${r.reason}`));
  return lines.join('\n');
}

export function hover(session: Session, params: HoverParams): Hover | null {
  if (!isListingUri(params.textDocument.uri)) return null;
  const e = session.store.byUri(params.textDocument.uri);
  const a = e?.analysis;
  if (!e || !a || !e.layout) return null;
  const line = params.position.line;
  const place = placeAt(e.layout, a, line);
  const md = (value: string, range?: [number, number]): Hover => ({
    contents: { kind: MarkupKind.Markdown, value },
    ...(range ? { range: { start: { line, character: range[0] }, end: { line, character: range[1] } } } : {}),
  });
  switch (place.kind) {
    case 'unit': {
      const l = a.layers[place.layer];
      return md(unitHover(session, l, place.unit), unitLabelRange(l, place.unit));
    }
    case 'layer': {
      const l = a.layers[place.layer];
      return md(layerHover(session, l), layerNameRange(l));
    }
    case 'header':
      return md(`**${a.network}** — ${a.format}, ${a.parameters.toLocaleString('en-US')} parameters, ${a.regularizer}, R = ${num(a.R)}; analysed in ${num(a.durationMs)} ms`);
    default:
      return null;
  }
}
