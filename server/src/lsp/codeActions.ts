// Quick fixes from our diagnostics' data (a lookup, no analysis), and the "fix all" source
// action. The list is cheap: titles carry the ΔR the analysis already knows. Resolving one
// solves on the balance worker for the exact predicted ΔR (kept there for running the fix).
import { basename } from 'node:path';
import { CodeActionKind, type CancellationToken, type CodeAction, type CodeActionParams, type Command, type Diagnostic } from 'vscode-languageserver';
import { DIAGNOSTIC_SOURCE, DiagnosticCodes, FIX_ALL_KIND, type CodeActionData, type DiagnosticData } from '../contract/diagnostics';
import { Commands, scopeLabel, type BalanceArgs, type BalanceScope } from '../contract/requests';
import { num } from './numbers';
import type { LayerAnalysis } from '../app/analysis';
import { countAbove } from './listing';
import type { Session } from './session';
import type { Entry } from './store';
import type { Prediction } from './workerProtocol';

function lower(deltaR: number, approx = false): string {
  return `R −${approx ? '≈' : ''}${num(deltaR)}`;
}

function layerOf(e: Entry, name: string): LayerAnalysis | undefined {
  return e.analysis?.layers.find((l) => l.name === name);
}

/** The title, with whatever ΔR is known without solving. */
export function titleOf(session: Session, e: Entry, scope: BalanceScope, prediction?: Prediction): string {
  const known = prediction ?? session.knownPrediction(e, scope);
  const extra = known ? ` (${lower(known.deltaR)}${e.analysis && e.analysis.R > 0 ? `, ${num((100 * known.deltaR) / e.analysis.R)}%` : ''})` : '';
  switch (scope.kind) {
    case 'network':
      return `Balance the whole network (global optimum)${extra}`;
    case 'unit': {
      const l = layerOf(e, scope.layer);
      const lambda = l?.columns.lambda[scope.index];
      const dr = l?.columns.deltaR[scope.index];
      const hint = known ? extra : lambda !== undefined && !Number.isNaN(lambda) ? ` (λ* = ${num(lambda)}, ${lower(dr!)})` : '';
      return `Balance unit ${scope.layer}#${scope.index}${hint}`;
    }
    case 'layer': {
      const l = layerOf(e, scope.layer);
      if (scope.tied) {
        const hint = known ? extra : l?.tied ? ` (λ = ${num(l.tied.lambda)}, ${lower(l.tied.deltaR)})` : '';
        return `Balance layer ${scope.layer} with one shared λ (tied)${hint}`;
      }
      const hint = known ? extra : l ? ` (${lower(l.eachDeltaR, !l.eachExact)})` : '';
      return `Balance layer ${scope.layer}, each unit${hint}`;
    }
  }
}

export function balanceCommand(title: string, e: Entry, scope: BalanceScope): Command {
  const args: BalanceArgs = { file: e.fileUri, scope };
  return { title, command: Commands.balance, arguments: [args] };
}

function scopesFor(d: DiagnosticData, e: Entry): { scope: BalanceScope; preferred: boolean }[] {
  const network = { scope: { kind: 'network' } as BalanceScope, preferred: false };
  switch (d.code) {
    case DiagnosticCodes.unitUnbalanced:
      return [
        { scope: { kind: 'unit', layer: d.layer, index: d.unit }, preferred: true },
        { scope: { kind: 'layer', layer: d.layer }, preferred: false },
        ...(layerOf(e, d.layer)?.tied ? [{ scope: { kind: 'layer', layer: d.layer, tied: true } as BalanceScope, preferred: false }] : []),
        network,
      ];
    case DiagnosticCodes.layerUnbalanced:
      return [
        { scope: { kind: 'layer', layer: d.layer }, preferred: true },
        ...(layerOf(e, d.layer)?.tied ? [{ scope: { kind: 'layer', layer: d.layer, tied: true } as BalanceScope, preferred: false }] : []),
        network,
      ];
    case DiagnosticCodes.checkpointUnbalanced:
      return [{ ...network, preferred: true }];
    default:
      return [];
  }
}

function wants(only: string[] | undefined, kind: string): boolean {
  return !only || only.some((k) => kind === k || kind.startsWith(`${k}.`));
}

function action(session: Session, e: Entry, scope: BalanceScope, kind: string, diagnostics: Diagnostic[], preferred: boolean, title?: string): CodeAction {
  const t = title ?? titleOf(session, e, scope);
  const data: CodeActionData = { file: e.fileUri, scope };
  const a: CodeAction = { title: t, kind, data };
  if (diagnostics.length) a.diagnostics = diagnostics;
  if (preferred) a.isPreferred = true;
  // Clients that cannot resolve `command` lazily get it now; the others ask for it (and the exact ΔR).
  if (!session.features.resolveCommand) a.command = balanceCommand(t, e, scope);
  return a;
}

export function codeActions(session: Session, params: CodeActionParams): CodeAction[] {
  const e = session.store.byUri(params.textDocument.uri);
  if (!e?.analysis) return [];
  const only = params.context.only;
  const out: CodeAction[] = [];
  if (wants(only, CodeActionKind.QuickFix)) {
    const byScope = new Map<string, { scope: BalanceScope; diagnostics: Diagnostic[]; preferred: boolean }>();
    for (const d of params.context.diagnostics) {
      if (d.source !== DIAGNOSTIC_SOURCE || !d.data) continue;
      for (const { scope, preferred } of scopesFor(d.data as DiagnosticData, e)) {
        const k = scopeLabel(scope);
        const got = byScope.get(k);
        if (got) {
          got.diagnostics.push(d);
          got.preferred ||= preferred;
        } else byScope.set(k, { scope, diagnostics: [d], preferred });
      }
    }
    for (const { scope, diagnostics, preferred } of byScope.values()) out.push(action(session, e, scope, CodeActionKind.QuickFix, diagnostics, preferred));
  }
  const unbalanced = e.analysis.layers.some((l) => countAbove(l, session.settings.tolerance) > 0);
  if (unbalanced && only && wants(only, FIX_ALL_KIND)) {
    const scope: BalanceScope = { kind: 'network' };
    out.push(action(session, e, scope, FIX_ALL_KIND, [], false, `Fix all: balance ${basename(e.path)} to its global optimum`));
  }
  return out;
}

/** Solves for the exact ΔR, then fills in the command (and puts the ΔR in the title). */
export async function resolveCodeAction(session: Session, a: CodeAction, token: CancellationToken): Promise<CodeAction> {
  const data = a.data as CodeActionData | undefined;
  const e = data && session.store.byUri(data.file);
  if (!data || !e) return a;
  let p: Prediction;
  try {
    p = await session.predict(e, data.scope, token);
  } catch {
    // No prediction (cancelled, or the file went away): the fix itself reports what happens.
    return { ...a, command: balanceCommand(a.title, e, data.scope) };
  }
  const detail = ` — predicted R ${num(p.RBefore)} → ${num(p.RAfter)} (${lower(p.deltaR)})`;
  // The list's own ΔR hint gives way to the exact prediction.
  const title = a.title.includes(' — predicted ') ? a.title : `${a.title.replace(/ \((?:λ|R −)[^()]*\)$/, '')}${detail}`;
  return { ...a, title, command: balanceCommand(title, e, data.scope) };
}
