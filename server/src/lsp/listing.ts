// The listing: a checkpoint as read-only text, a header, then per layer one heading line and
// one line per unit or channel. Line numbers come from the layout alone (no text needed), so
// diagnostics, hovers and symbols of a large model never render it; the text itself is
// rendered on request and cached. How a heading and a unit line begin is the contract's
// (server/src/contract/listing.ts): the client finds units by it.
import { LAYER_PREFIX, UNIT_INDENT, unitLabel as labelOf, unitLinePrefix } from '../contract/listing';
import { num } from './numbers';
import { UNIT_STATUSES, type CheckpointAnalysis, type LayerAnalysis } from '../app/analysis';
import type { Entry } from './store';

/** Header lines before the notes: title, format, network, regularizer, R, balance. */
const HEADER_FIXED = 6;

export interface ListingLayout {
  /** Line of each layer's heading; its units follow on the next lines, then a blank line. */
  layerLine: number[];
  lineCount: number;
}

export function layoutOf(a: CheckpointAnalysis): ListingLayout {
  let line = HEADER_FIXED + a.notes.length + 1;
  const layerLine = a.layers.map((l) => {
    const at = line;
    line += l.units + 2;
    return at;
  });
  return { layerLine, lineCount: line };
}

export type Place = { kind: 'header' } | { kind: 'layer'; layer: number } | { kind: 'unit'; layer: number; unit: number } | { kind: 'none' };

export function placeAt(layout: ListingLayout, a: CheckpointAnalysis, line: number): Place {
  const ll = layout.layerLine;
  if (ll.length === 0 || line < ll[0]) return line < HEADER_FIXED + a.notes.length ? { kind: 'header' } : { kind: 'none' };
  let lo = 0;
  let hi = ll.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ll[mid] <= line) lo = mid;
    else hi = mid - 1;
  }
  const offset = line - ll[lo];
  if (offset === 0) return { kind: 'layer', layer: lo };
  if (offset <= a.layers[lo].units) return { kind: 'unit', layer: lo, unit: offset - 1 };
  return { kind: 'none' };
}

export function unitLine(layout: ListingLayout, layer: number, unit: number): number {
  return layout.layerLine[layer] + 1 + unit;
}

export function unitLabel(l: LayerAnalysis, unit: number): string {
  return labelOf(l.name, unit);
}

/** Columns of a layer heading's name, and of a unit line's label (what diagnostics underline). */
export function layerNameRange(l: LayerAnalysis): [number, number] {
  return [LAYER_PREFIX.length, LAYER_PREFIX.length + l.name.length];
}

export function unitLabelRange(l: LayerAnalysis, unit: number): [number, number] {
  return [UNIT_INDENT, UNIT_INDENT + unitLabel(l, unit).length];
}

export function activationText(l: LayerAnalysis): string {
  if (!l.activation) return '-';
  return l.activationSource ? `${l.activation} (${l.activationSource})` : l.activation;
}

/** The tolerance a layer is held to: the setting, or its weights' rounding where that is coarser (bfloat16). */
export function layerTolerance(l: LayerAnalysis, tolerance: number): number {
  return Math.max(tolerance, l.roundoff);
}

/** A unit's status word as the listing shows it. */
export function unitStatus(l: LayerAnalysis, unit: number, tolerance: number): string {
  if (l.role !== 'hidden') return l.role;
  const status = UNIT_STATUSES[l.columns.status[unit]];
  if (status !== 'balanceable') return status;
  return l.columns.rel[unit] > layerTolerance(l, tolerance) ? 'unbalanced' : 'ok';
}

export function worstUnit(l: LayerAnalysis): number {
  let worst = -1;
  let m = -1;
  const rel = l.columns.rel;
  for (let u = 0; u < rel.length; u++) {
    if (rel[u] > m) {
      m = rel[u];
      worst = u;
    }
  }
  return worst;
}

export function countAbove(l: LayerAnalysis, tolerance: number): number {
  const tol = layerTolerance(l, tolerance);
  let n = 0;
  for (const r of l.columns.rel) if (r > tol) n++;
  return n;
}


function headerLines(e: Entry, a: CheckpointAnalysis, tolerance: number, device?: string): string[] {
  let unbalanced = 0;
  let worst: { layer: LayerAnalysis; unit: number } | undefined;
  for (const l of a.layers) {
    unbalanced += countAbove(l, tolerance);
    const w = worstUnit(l);
    if (w >= 0 && (!worst || l.columns.rel[w] > worst.layer.columns.rel[worst.unit])) worst = { layer: l, unit: w };
  }
  const state = e.state === 'analysed' ? '' : ` (${e.state === 'failed' ? 'last good analysis; now failing' : 'analysing again…'})`;
  const verdict =
    a.balanceable === 0
      ? 'no balanceable units'
      : unbalanced === 0
        ? `all ${a.balanceable} balanceable units within the tolerance`
        : `${unbalanced} of ${a.balanceable} balanceable units out of balance (worst ${unitLabel(worst!.layer, worst!.unit)}: ${num(worst!.layer.columns.rel[worst!.unit])})`;
  return [
    `Synaptic Balance listing of ${a.path}${state}`,
    `format       ${a.format} (${a.formatDescription})`,
    `network      ${a.network}: ${a.parameters.toLocaleString('en-US')} parameters, ${a.units} units`,
    `regularizer  ${a.regularizer}; tolerance ${num(tolerance)} on |IN−OUT|/(IN+OUT)${device ? `; fixes on ${device}` : ''}`,
    `R            ${num(a.R)}; network deficit Σ(IN−OUT)² ${num(a.totalDeficit)}`,
    `balance      ${verdict}; ${a.dead} dead`,
    ...a.notes.map((n) => `note         ${n.replace(/\s*\n\s*/g, ' ')}`),
    '',
  ];
}

function layerHeading(l: LayerAnalysis, tolerance: number): string {
  return (
    `${LAYER_PREFIX}${l.name}  ${l.role}  ${activationText(l)}  units ${l.units}  balanceable ${l.balanceable}` +
    `  IN ${num(l.inTotal)}  OUT ${num(l.outTotal)}  max rel ${num(l.maxRelativeDeficit)}  mean rel ${num(l.meanRelativeDeficit)}  unbalanced ${countAbove(l, tolerance)}` +
    (l.roundoff > tolerance ? `  (tolerance ${num(l.roundoff)}: weight rounding)` : '')
  );
}

function unitLines(out: string[], l: LayerAnalysis, tolerance: number, from: number, to: number): void {
  const width = unitLabel(l, l.units - 1).length;
  const act = l.role === 'hidden' ? `  ${activationText(l)}` : '';
  const c = l.columns;
  for (let u = from; u < to; u++) {
    const reason = l.role === 'hidden' && c.reason[u] >= 0 ? ` — ${l.reasonTexts[c.reason[u]]}` : '';
    out.push(
      `${unitLinePrefix()}${unitLabel(l, u).padEnd(width)}  IN ${num(c.in[u]).padEnd(10)}  OUT ${num(c.out[u]).padEnd(10)}  rel ${num(c.rel[u]).padEnd(10)}` +
        `  λ* ${num(c.lambda[u]).padEnd(10)}  ΔR ${num(c.deltaR[u]).padEnd(10)}  ${unitStatus(l, u, tolerance).padEnd(10)}${act}${reason}`,
    );
  }
}

/** Lines rendered between two yields to the event loop: a few milliseconds of work. */
const CHUNK_LINES = 2000;

/**
 * The listing text. Rendering a large model takes tens of milliseconds, so it is done in
 * chunks between which other requests are answered.
 */
export async function renderListing(e: Entry, tolerance: number, pause: () => Promise<void> = () => new Promise((r) => setImmediate(r)), device?: string): Promise<string> {
  const a = e.analysis;
  if (!a) {
    const what = e.failure ? `error        ${e.failure.message}` : `state        ${e.state === 'removed' ? 'removed from the workspace' : 'waiting for analysis…'}`;
    return `Synaptic Balance listing of ${e.path}\n${what}\n`;
  }
  const out = headerLines(e, a, tolerance, device);
  let budget = CHUNK_LINES;
  for (const l of a.layers) {
    out.push(layerHeading(l, tolerance));
    for (let u = 0; u < l.units; ) {
      const to = Math.min(l.units, u + budget);
      unitLines(out, l, tolerance, u, to);
      budget -= to - u;
      u = to;
      if (budget <= 0) {
        await pause();
        budget = CHUNK_LINES;
      }
    }
    out.push('');
  }
  return out.join('\n');
}

/**
 * The entry's listing text, rendered once per version, tolerance and device (concurrent requests
 * share the rendering). `device`: where quick fixes compute (settings.ts deviceLabel).
 */
export function listingText(e: Entry, tolerance: number, device?: string): Promise<string> {
  const key = `${e.version} ${tolerance} ${device ?? ''}`;
  if (!e.rendered || e.rendered.key !== key) e.rendered = { key, text: renderListing(e, tolerance, undefined, device) };
  return e.rendered.text;
}
