// Diagnostics of one checkpoint: on its listing, per layer and per worst units (capped), with
// notes on units that cannot be balanced; on its own file, one summary pointing into the listing,
// or the one error that kept it from being read.
import { DiagnosticSeverity, type Diagnostic, type DiagnosticRelatedInformation, type Range } from 'vscode-languageserver';
import { num } from './numbers';
import { DIAGNOSTIC_SOURCE, DiagnosticCodes, type CheckpointUnbalancedData, type DiagnosticData, type FileProblemData, type LayerUnbalancedData, type NotBalanceableData, type UnitUnbalancedData } from '../contract/diagnostics';
import type { SeverityName, Settings } from '../contract/settings';
import type { JobFailure, LayerAnalysis } from '../app/analysis';
import { countAbove, layerNameRange, layerTolerance, unitLabel, unitLabelRange, unitLine, worstUnit } from './listing';
import type { Entry } from './store';

export interface EntryDiagnostics {
  listing: Diagnostic[];
  file: Diagnostic[];
}

const SEVERITY: Record<SeverityName, DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  information: DiagnosticSeverity.Information,
  hint: DiagnosticSeverity.Hint,
};

const FILE_START: Range = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };

function lineRange(line: number, [from, to]: [number, number]): Range {
  return { start: { line, character: from }, end: { line, character: to } };
}

function diagnostic(range: Range, severity: DiagnosticSeverity, message: string, data: DiagnosticData, related?: DiagnosticRelatedInformation[]): Diagnostic {
  const d: Diagnostic = { range, severity, source: DIAGNOSTIC_SOURCE, code: data.code, message, data };
  if (related?.length) d.relatedInformation = related;
  return d;
}

/** Messages name the file only where the diagnostic does not already sit on it (a shard or a manifest still is named). */
function problemOn(f: JobFailure, path: string): string {
  return f.path === path && f.problem !== undefined ? f.problem : f.message;
}

/** Units above the tolerance, worst first, at most `cap`. */
function worstUnits(l: LayerAnalysis, tolerance: number, cap: number): number[] {
  if (cap <= 0) return [];
  tolerance = layerTolerance(l, tolerance);
  const above: number[] = [];
  const rel = l.columns.rel;
  for (let u = 0; u < rel.length; u++) if (rel[u] > tolerance) above.push(u);
  above.sort((a, b) => rel[b] - rel[a] || a - b);
  return above.slice(0, cap);
}

export function diagnosticsOf(e: Entry, s: Settings): EntryDiagnostics {
  if (e.failure && !e.analysis) {
    const code = e.failure.kind === 'unknown-format' ? DiagnosticCodes.unknownFormat : DiagnosticCodes.unreadable;
    const message = problemOn(e.failure, e.path);
    const data: FileProblemData = { code, file: e.fileUri, message };
    return { listing: [], file: [diagnostic(FILE_START, DiagnosticSeverity.Error, message, data)] };
  }
  const a = e.analysis;
  const layout = e.layout;
  if (!a || !layout) return { listing: [], file: [] };
  const severity = SEVERITY[s.severity];
  const tol = s.tolerance;
  const listing: Diagnostic[] = [];
  const related: DiagnosticRelatedInformation[] = [];
  let unbalanced = 0;
  let layersOut = 0;
  let worst: { layer: LayerAnalysis; index: number; unit: number } | undefined;
  a.layers.forEach((l, li) => {
    const line = layout.layerLine[li];
    const n = countAbove(l, tol);
    if (n > 0) {
      unbalanced += n;
      layersOut++;
      const w = worstUnit(l);
      const wr = l.columns.rel[w];
      if (!worst || wr > worst.layer.columns.rel[worst.unit]) worst = { layer: l, index: li, unit: w };
      const data: LayerUnbalancedData = {
        code: DiagnosticCodes.layerUnbalanced,
        file: e.fileUri,
        layer: l.name,
        unbalanced: n,
        balanceable: l.balanceable,
        worstUnit: w,
        worstRelativeDeficit: wr,
        eachDeltaR: l.eachDeltaR,
        tiedDeltaR: l.tied?.deltaR,
      };
      const msg = `Layer ${l.name}: ${n} of ${l.balanceable} balanceable units out of balance (worst ${unitLabel(l, w)}: relative deficit ${num(wr)} > ${num(layerTolerance(l, tol))})`;
      listing.push(diagnostic(lineRange(line, layerNameRange(l)), severity, msg, data));
      related.push({ location: { uri: e.listingUri, range: lineRange(line, layerNameRange(l)) }, message: msg });
      for (const u of worstUnits(l, tol, s.maxDiagnosticsPerLayer)) {
        const c = l.columns;
        const ud: UnitUnbalancedData = { code: DiagnosticCodes.unitUnbalanced, file: e.fileUri, layer: l.name, unit: u, in: c.in[u], out: c.out[u], relativeDeficit: c.rel[u] };
        let fix = '';
        if (!Number.isNaN(c.lambda[u])) {
          ud.lambda = c.lambda[u];
          ud.deltaR = c.deltaR[u];
          fix = `; scaling it by λ* = ${num(c.lambda[u])} lowers R by ${num(c.deltaR[u])}`;
        }
        const um = `${unitLabel(l, u)} out of balance: IN ${num(c.in[u])} vs OUT ${num(c.out[u])} (relative deficit ${num(c.rel[u])})${fix}`;
        listing.push(diagnostic(lineRange(unitLine(layout, li, u), unitLabelRange(l, u)), severity, um, ud));
      }
    }
    for (const r of l.reasons) {
      const data: NotBalanceableData = { code: DiagnosticCodes.notBalanceable, file: e.fileUri, layer: l.name, units: r.units, reason: r.reason };
      const msg = `Layer ${l.name}: ${r.units} unit${r.units === 1 ? '' : 's'} cannot be balanced: ${r.reason}`;
      listing.push(diagnostic(lineRange(line, layerNameRange(l)), DiagnosticSeverity.Information, msg, data));
    }
  });
  const file: Diagnostic[] = [];
  if (worst) {
    const wl = worst.layer;
    const wline = unitLine(layout, worst.index, worst.unit);
    const data: CheckpointUnbalancedData = {
      code: DiagnosticCodes.checkpointUnbalanced,
      file: e.fileUri,
      listing: e.listingUri,
      unbalanced,
      balanceable: a.balanceable,
      layers: layersOut,
      worst: { layer: wl.name, unit: worst.unit, relativeDeficit: wl.columns.rel[worst.unit] },
    };
    const msg =
      `${unbalanced} of ${a.balanceable} balanceable units out of balance in ${layersOut} layer${layersOut === 1 ? '' : 's'} ` +
      `(worst ${unitLabel(wl, worst.unit)}: relative deficit ${num(wl.columns.rel[worst.unit])} > ${num(layerTolerance(wl, tol))}; ${a.regularizer}, R = ${num(a.R)}); see the listing`;
    const toWorst: DiagnosticRelatedInformation = { location: { uri: e.listingUri, range: lineRange(wline, unitLabelRange(wl, worst.unit)) }, message: `worst unit ${unitLabel(wl, worst.unit)}` };
    file.push(diagnostic(FILE_START, severity, msg, data, [toWorst, ...related]));
  }
  return { listing, file };
}
