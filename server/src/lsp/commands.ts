// workspace/executeCommand: running a fix (balance, write, verify, re-analyse, show the result)
// and asking for a fresh analysis.
import { realpathSync, statSync } from 'node:fs';
import { basename, isAbsolute, relative } from 'node:path';
import { ErrorCodes, MessageType, ResponseError, ShowMessageNotification, type CancellationToken, type ExecuteCommandParams, type WorkDoneProgressReporter } from 'vscode-languageserver';
import { num } from './numbers';
import { Commands, scopeLabel, type BalanceArgs, type BalanceResult, type BalanceScope, type FunctionCheck, type ReanalyzeArgs } from '../contract/requests';
import { analysisOptions } from './settings';
import { fixProgress } from './progress';
import type { Session } from './session';
import { fileUriOf, pathOfUri } from './uris';
import { JobError } from './workers';
import type { BalanceOutcome } from './workerProtocol';

function invalid(message: string): ResponseError<void> {
  return new ResponseError(ErrorCodes.InvalidParams, message);
}

function checkScope(s: unknown): BalanceScope {
  const o = s as Partial<Record<string, unknown>> | undefined;
  if (o?.kind === 'network') return { kind: 'network' };
  if (o?.kind === 'layer' && typeof o.layer === 'string') return { kind: 'layer', layer: o.layer, tied: o.tied === true };
  if (o?.kind === 'unit' && typeof o.layer === 'string' && Number.isInteger(o.index)) return { kind: 'unit', layer: o.layer, index: o.index as number };
  throw invalid(`scope must be {kind: "network"}, {kind: "layer", layer, tied?} or {kind: "unit", layer, index}; got ${JSON.stringify(s)}`);
}

/**
 * Quick fixes always check the written file and never keep one that computes something else;
 * one whose check cannot run (an operator without a forward pass) is kept and says so.
 */
const FIX_VERIFICATION = { enabled: true, force: false, requireCheck: false };

/**
 * Why a file may not be balanced from a client's request, or undefined when it may: only
 * checkpoints under the workspace folders, with links and `..` resolved first (a client must
 * not be able to make the server rewrite files elsewhere).
 */
function outsideWorkspace(path: string, roots: readonly string[]): string | undefined {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return 'no such file';
  }
  if (!statSync(real).isFile()) return 'not a file';
  const inside = roots.some((root) => {
    let r: string;
    try {
      r = realpathSync(root);
    } catch {
      return false;
    }
    const rel = relative(r, real);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  });
  return inside ? undefined : 'not under a workspace folder; only checkpoints in the workspace are balanced';
}

async function balanceCommand(session: Session, raw: unknown, token: CancellationToken, attached: WorkDoneProgressReporter): Promise<BalanceResult> {
  const args = raw as Partial<BalanceArgs> | undefined;
  const path = typeof args?.file === 'string' && args.file.startsWith('file:') ? pathOfUri(args.file) : undefined;
  if (!args || path === undefined) throw invalid(`${Commands.balance} needs {file: a file: URI, scope}`);
  const outside = outsideWorkspace(path, session.roots);
  if (outside) throw invalid(`${Commands.balance}: ${path}: ${outside}`);
  const scope = checkScope(args.scope);
  const inPlace = args.inPlace ?? session.settings.inPlace;
  if (args.regularizerP !== undefined && !(typeof args.regularizerP === 'number' && args.regularizerP > 0 && Number.isFinite(args.regularizerP))) {
    throw invalid(`${Commands.balance}: regularizerP must be a positive number, got ${JSON.stringify(args.regularizerP)}`);
  }
  const options = { ...analysisOptions(session.settings), ...(args.regularizerP !== undefined ? { p: args.regularizerP } : {}) };
  // Balanced for another p: the written file is analysed again under the workspace's settings.
  const foreignP = options.p !== session.settings.regularizerP;
  const file = fileUriOf(path);
  const progress = fixProgress(session.connection, session.features.workDoneProgress, attached, token, `Balancing ${basename(path)} (${scopeLabel(scope)})`);
  let outcome: BalanceOutcome;
  try {
    outcome = await session.actionWorker.run(
      { type: 'balance', path, options, solve: session.solveSpec(scope, args.method, args.tolerance), output: { kind: inPlace ? 'in-place' : 'beside' }, verify: FIX_VERIFICATION, analyseWritten: true },
      { token: progress.token, onProgress: (p) => progress.report(p.percent, p.message) },
    );
  } catch (e) {
    if (e instanceof JobError && e.failure.kind === 'cancelled') return { cancelled: true, file };
    const message = (e as Error).message;
    void session.connection.sendNotification(ShowMessageNotification.type, { type: MessageType.Error, message: `Synaptic Balance: ${message}` });
    throw new ResponseError(ErrorCodes.InternalError, message);
  } finally {
    progress.done();
  }
  if (outcome.nothingToBalance) throw new ResponseError(ErrorCodes.InvalidRequest, `${path}: no balanceable units, nothing written (${(outcome.whyNothing ?? []).join('; ')})`);
  if (outcome.cancelled || !outcome.output || !outcome.analysis) return { cancelled: true, file };
  if (outcome.device) session.lastDevice = outcome.device;
  const out = session.store.ensure(outcome.output);
  if (foreignP) session.scheduler.enqueue(outcome.output, true);
  else {
    session.store.setAnalysis(out, outcome.analysis);
    for (const f of outcome.analysis.files) session.watcher.markAnalysed(f);
    session.publish(out);
  }
  const s = outcome.solve!;
  // The written copy was checked before it was moved into place (onnxruntime for ONNX, else the engine).
  const check = outcome.verification ?? outcome.writtenVerification;
  const verified = !check
    ? `not verified: ${outcome.verificationSkipped ?? 'no forward pass'}`
    : check.inconclusive
      ? `not verified, the check was inconclusive: ${check.inconclusive}`
      : `outputs agree to ${num(check.maxRelative)} (relative)${sizesChosen(check.inputs)}`;
  // A notification, not window/showMessageRequest: nothing waits on the user's answer.
  void session.connection.sendNotification(ShowMessageNotification.type, {
    type: MessageType.Info,
    message: `Balanced ${basename(path)} (${scopeLabel(scope)}): R ${num(s.RBefore)} → ${num(s.RAfter)}; ${verified}; wrote ${basename(outcome.output)}`,
  });
  if (session.features.showDocument) void session.connection.window.showDocument({ uri: out.listingUri, takeFocus: true }).catch(() => undefined);
  return {
    cancelled: false,
    file,
    output: out.fileUri,
    listingUri: out.listingUri,
    written: (outcome.written ?? []).map(fileUriOf),
    method: s.method,
    iterations: s.iterations,
    converged: s.converged,
    RBefore: s.RBefore,
    RAfter: s.RAfter,
    maxRelativeDeficitBefore: s.maxRelativeDeficitBefore,
    maxRelativeDeficitAfter: s.maxRelativeDeficitAfter,
    verification: outcome.verification,
    writtenVerification: outcome.writtenVerification,
    verificationSkipped: outcome.verificationSkipped,
  };
}

/** The input sizes a check chose (only where the model left some open). */
function sizesChosen(inputs: FunctionCheck['inputs']): string {
  if (!inputs?.length || inputs.every((i) => i.source === 'model')) return '';
  return ` on ${inputs.map((i) => `${i.name} ${i.shape.join('×')}`).join(', ')}`;
}

function reanalyze(session: Session, raw: unknown): null {
  const args = raw as ReanalyzeArgs | undefined;
  if (args?.file !== undefined) {
    const path = pathOfUri(args.file);
    if (path === undefined) throw invalid(`${Commands.reanalyze}: not a file: URI: ${args.file}`);
    session.scheduler.enqueue(path, true);
  } else {
    session.watcher.forgetAll();
    session.scheduler.restartAll();
  }
  return null;
}

export async function executeCommand(session: Session, params: ExecuteCommandParams, token: CancellationToken, attached: WorkDoneProgressReporter): Promise<unknown> {
  const arg = params.arguments?.[0];
  switch (params.command) {
    case Commands.balance:
      return balanceCommand(session, arg, token, attached);
    case Commands.reanalyze:
      return reanalyze(session, arg);
    default:
      throw invalid(`unknown command ${params.command}`);
  }
}
