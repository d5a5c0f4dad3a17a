// Reports for people (aligned text) and for programs (JSON), from an Analysis.
import type { Analysis } from '../engine/analyze';
import type { LayerFixes } from '../app/analyse';
import type { Prediction, Verification } from '../app/requests';

/** What a balance report shows of the solve. */
type SolveFigures = Omit<Prediction, 'deltaR'> & { maxRelativeDeficitBefore: number };

export function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (!(a >= 1e-3 && a < 1e6)) return v.toExponential(2);
  const s = v.toPrecision(6);
  // Trailing zeros of a fraction only: 123450 stays 123450.
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** Aligned columns: the first `left` padded on the right (names), the others on the left (figures). */
function table(rows: string[][], left = 3): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c < left ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd()).join('\n');
}

export interface FileInfo {
  file: string;
  format: string;
  notes?: string[];
}

export function renderAnalysisText(info: FileInfo, a: Analysis): string {
  const head = `${info.file}  (${info.format}, ${a.parameters.toLocaleString('en-US')} parameters, ${a.regularizer}, tolerance ${fmt(a.tolerance)})`;
  const rows = [['layer', 'role', 'activation', 'units', 'balanceable', 'IN total', 'OUT total', 'max rel', 'mean rel', 'unbalanced']];
  for (const l of a.layers) {
    rows.push([l.name, l.role, l.activation ?? '-', String(l.units), String(l.balanceable), fmt(l.inTotal), fmt(l.outTotal), fmt(l.maxRelativeDeficit), fmt(l.meanRelativeDeficit), String(l.unbalanced)]);
  }
  const notes: string[] = [];
  for (const l of a.layers) for (const r of l.reasons) notes.push(`  ${l.name}: ${r.units} unit${r.units === 1 ? '' : 's'} not balanceable: ${r.reason}`);
  const verdict =
    a.balanceable === 0
      ? 'no balanceable units'
      : a.unbalanced === 0
        ? `all ${a.balanceable} balanceable units are within the tolerance`
        : `${a.unbalanced} of ${a.balanceable} balanceable units are out of balance (worst relative deficit ${fmt(a.maxRelativeDeficit)})`;
  const fileNotes = (info.notes ?? []).map((n) => `note: ${n}`);
  return [head, ...fileNotes, '', table(rows), ...(notes.length ? ['', ...notes] : []), '', `R = ${fmt(a.R)}, network deficit Σ(IN−OUT)² = ${fmt(a.totalDeficit)}; ${verdict}.`].join('\n') + '\n';
}

export function analysisJson(info: FileInfo, a: Analysis): object {
  return {
    file: info.file,
    format: info.format,
    notes: info.notes ?? [],
    regularizer: a.regularizer,
    tolerance: a.tolerance,
    parameters: a.parameters,
    layers: a.layers.map((l) => ({
      name: l.name,
      role: l.role,
      activation: l.activation ?? null,
      activationSource: l.activationSource ?? null,
      units: l.units,
      balanceableUnits: l.balanceable,
      inTotal: l.inTotal,
      outTotal: l.outTotal,
      maxRelativeDeficit: l.maxRelativeDeficit,
      meanRelativeDeficit: l.meanRelativeDeficit,
      unbalancedUnits: l.unbalanced,
      visibleReasons: l.reasons,
    })),
    totals: {
      units: a.units,
      balanceableUnits: a.balanceable,
      unbalancedUnits: a.unbalanced,
      deadUnits: a.dead,
      maxRelativeDeficit: a.maxRelativeDeficit,
      networkDeficit: a.totalDeficit,
    },
    R: a.R,
  };
}

export function renderBalanceText(r: SolveFigures, output: string | undefined, verification: Verification | undefined, written: readonly string[] = [], skipped?: string): string {
  const lines = [
    `balanced by ${r.method}: ${r.iterations} iteration${r.iterations === 1 ? '' : 's'}, ${r.converged ? 'converged' : 'NOT converged'}`,
    `R ${fmt(r.RBefore)} → ${fmt(r.RAfter)} (${fmt((100 * (r.RBefore - r.RAfter)) / r.RBefore)}% lower); max relative deficit ${fmt(r.maxRelativeDeficitBefore)} → ${fmt(r.maxRelativeDeficitAfter)}`,
  ];
  if (verification) lines.push(...renderVerification(verification));
  // What the check could not do (no runtime, no forward pass): a forced write says it was not verified.
  if (skipped) lines.push(verification ? `note: ${skipped}` : `not verified: ${skipped}`);
  if (output) lines.push(`wrote ${output}`);
  // Companion files (shards, external data) by name: one may have been renamed to spare another model's.
  const others = written.filter((f) => f !== output);
  if (others.length) lines.push(`  with ${others.join(', ')}`);
  return lines.join('\n') + '\n';
}

/** The check's lines: its figures, the input shapes used, what it judged, and whether it proves anything. */
export function renderVerification(v: Verification): string[] {
  const lines = [`function check (${v.samples} random inputs${v.steps > 1 ? ` × ${v.steps} steps` : ''}): largest output difference ${fmt(v.maxAbsolute)} absolute, ${fmt(v.maxRelative)} relative (${v.method})`];
  if (v.inputs?.length) {
    const origin: Record<string, string> = { model: 'fixed by the model', option: 'from --input-shape', metadata: 'from the model\'s metadata', graph: 'needed by the graph', default: 'default sizes' };
    lines.push(`  inputs: ${v.inputs.map((i) => `${i.name} ${i.shape.join('×')} (${origin[i.source] ?? i.source})`).join(', ')}`);
    for (const n of new Set(v.inputs.map((i) => i.note).filter(Boolean))) lines.push(`  note: ${n}`);
  }
  for (const j of v.judgedOn ?? []) {
    lines.push(`  ${j.output} is a discontinuous function of the weights: judged on ${j.via.join(', ') || 'nothing continuous'}${j.of ? ` (${j.flipped ?? 0} of ${j.of} elements differ)` : ''}`);
  }
  if (v.limit !== undefined) lines.push(`  limit ${fmt(v.limit)}${v.limitBasis ? `: ${v.limitBasis}` : ''}`);
  for (const n of v.notes ?? []) lines.push(`  note: ${n}`);
  if (v.inconclusive) lines.push(`  INCONCLUSIVE, not verified: ${v.inconclusive}`);
  return lines;
}

export function balanceJson(r: SolveFigures, output: string | undefined, verification: Verification | undefined, scales: Record<string, number[]>): object {
  return {
    method: r.method,
    iterations: r.iterations,
    converged: r.converged,
    RBefore: r.RBefore,
    RAfter: r.RAfter,
    maxRelativeDeficitBefore: r.maxRelativeDeficitBefore,
    maxRelativeDeficitAfter: r.maxRelativeDeficitAfter,
    verification: verification ?? null,
    output: output ?? null,
    scales,
  };
}

/** check --predict: what balancing each hidden layer would bring, from the weights as they are. */
export function renderFixesText(fixes: readonly LayerFixes[]): string {
  if (fixes.length === 0) return '\npredicted fixes: none (no balanceable hidden layer)\n';
  const rows = [['layer', 'out of balance', 'ΔR each', 'tied λ*', 'tied ΔR', 'worst unit', 'its λ*', 'its ΔR']];
  for (const f of fixes) {
    const w = f.units[0];
    rows.push([f.layer, String(f.units.length), `${fmt(f.eachDeltaR)}${f.eachExact ? '' : ' (coupled)'}`, f.tied ? fmt(f.tied.lambda) : '-', f.tied ? fmt(f.tied.deltaR) : '-', w ? `#${w.index}` : '-', w ? fmt(w.lambda) : '-', w ? fmt(w.deltaR) : '-']);
  }
  return ['', 'predicted fixes (λ* scales a unit\'s incoming weights, 1/λ* its outgoing ones; ΔR is how much R falls):', '', table(rows, 1)].join('\n') + '\n';
}
