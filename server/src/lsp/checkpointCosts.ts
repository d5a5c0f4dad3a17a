// synbal/checkpointCosts: per hidden layer, each unit's IN and OUT cost of one checkpoint (for
// the training monitor's checkpoint-folder runs). The analysis runs on a worker thread like
// every other; an up-to-date analysis the background queue already made is reused.
import { statSync } from 'node:fs';
import type { CancellationToken } from 'vscode-languageserver';
import { float32Base64 } from '../contract/balanceLog';
import type { CheckpointCostsParams, CheckpointCostsResult } from '../contract/requests';
import type { CheckpointAnalysis } from '../app/analysis';
import type { Session } from './session';
import { analysisOptions } from './settings';
import { fileUriOf, pathOfUri } from './uris';
import type { AnalysisOptions } from './workerProtocol';

function current(a: CheckpointAnalysis | undefined, o: AnalysisOptions): CheckpointAnalysis | undefined {
  if (!a || a.p !== o.p || a.activation !== o.activation) return undefined;
  try {
    for (const f of a.files) {
      const s = statSync(f.path);
      if (s.size !== f.size || s.mtimeMs !== f.mtimeMs) return undefined;
    }
  } catch {
    return undefined;
  }
  return a;
}

/** The layers the monitor shows: hidden ones with units that can be balanced. */
function monitored(a: CheckpointAnalysis) {
  return a.layers.filter((l) => l.role === 'hidden' && l.balanceable > 0);
}

export async function checkpointCosts(session: Session, params: CheckpointCostsParams, token?: CancellationToken): Promise<CheckpointCostsResult> {
  const path = pathOfUri(params.uri);
  if (path === undefined) throw new Error(`synbal/checkpointCosts: not a file: URI: ${params.uri}`);
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
  } catch (e) {
    throw new Error(`${path}: cannot read it (${(e as Error).message})`);
  }
  const options = analysisOptions(session.settings);
  // The fixes' worker: it is idle most of the time, while the background queue may be long.
  const analyse = (o: AnalysisOptions) => session.actionWorker.run({ type: 'analyze', path, options: o }, { token });
  const a = current(session.store.get(path)?.analysis, options) ?? (await analyse(options));
  // ‖W‖_F² of a layer's incoming weights is the sum of its units' IN costs under L2.
  const l2 = options.p === 2 ? a : await analyse({ ...options, p: 2 });
  const norms = new Map(monitored(l2).map((l) => [l.name, Math.sqrt(l.columns.in.reduce((s, v) => s + v, 0))]));
  return {
    fileUri: fileUriOf(path),
    regularizerP: options.p,
    layers: monitored(a).map((l) => ({
      name: l.name,
      in: float32Base64(l.columns.in),
      out: float32Base64(l.columns.out),
      weightNorm: norms.get(l.name) ?? NaN,
    })),
  };
}
