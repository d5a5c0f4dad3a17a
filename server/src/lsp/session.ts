// The running server's state in one place (rust-analyzer's "ctx"): settings, the checkpoint
// store, the workers, the scheduler and the watcher, and how a change reaches clients.
import type { CancellationToken, ClientCapabilities, Connection } from 'vscode-languageserver';
import { ListingChangedNotification, scopeLabel, type BalanceScope } from '../contract/requests';
import { DEFAULT_SETTINGS, type Settings } from '../contract/settings';
import { isCandidate } from './candidates';
import { diagnosticsOf } from './diagnostics';
import { AnalysisProgress } from './progress';
import { AnalysisScheduler } from './scheduler';
import { analysisKey, analysisOptions, computeSpec, includeGlobs, scanKey } from './settings';
import { CheckpointStore, type Entry } from './store';
import { CheckpointWatcher } from './watcher';
import { WorkerClient } from './workers';
import type { Prediction, SolveSpec } from './workerProtocol';

export interface ClientFeatures {
  configuration: boolean;
  showDocument: boolean;
  workDoneProgress: boolean;
  /** workspace/textDocumentContent/refresh (LSP 3.18). */
  contentRefresh: boolean;
  /** codeAction/resolve may fill in `command`: leave it out of the list. */
  resolveCommand: boolean;
  workspaceFolders: boolean;
}

export function clientFeatures(c: ClientCapabilities): ClientFeatures {
  return {
    configuration: c.workspace?.configuration === true,
    showDocument: c.window?.showDocument?.support === true,
    workDoneProgress: c.window?.workDoneProgress === true,
    contentRefresh: c.workspace?.textDocumentContent !== undefined,
    resolveCommand: c.textDocument?.codeAction?.resolveSupport?.properties.includes('command') === true,
    workspaceFolders: c.workspace?.workspaceFolders === true,
  };
}

/** Tolerance a fix solves to: well below the diagnostics' tolerance, so they are gone after it. */
export function solveTolerance(s: Settings): number {
  return Math.min(1e-7, Math.max(s.tolerance / 100, 1e-12));
}

export class Session {
  readonly store = new CheckpointStore();
  settings: Settings = { ...DEFAULT_SETTINGS };
  roots: string[] = [];
  readonly analysisWorker: WorkerClient;
  readonly actionWorker: WorkerClient;
  readonly scheduler: AnalysisScheduler;
  readonly watcher: CheckpointWatcher;
  /** Listings a client fetched through workspace/textDocumentContent: refreshed when they change. */
  readonly fetched = new Set<string>();
  private readonly predictions = new Map<string, Prediction>();

  constructor(
    readonly connection: Connection,
    readonly features: ClientFeatures,
    workerScript: string,
  ) {
    const log = (m: string) => connection.console.log(m);
    this.analysisWorker = new WorkerClient(workerScript, 'analysis', log);
    this.actionWorker = new WorkerClient(workerScript, 'balance', log);
    const progress = new AnalysisProgress(connection, features.workDoneProgress);
    this.scheduler = new AnalysisScheduler(this.analysisWorker, this.store, {
      options: () => analysisOptions(this.settings),
      changed: (e) => this.publish(e),
      analysed: (_e, a) => {
        for (const f of a.files) this.watcher.markAnalysed(f);
      },
      retryLater: (path) => this.watcher.forget(path),
      progress: (done, total, current) => progress.update(done, total, current),
      log,
    });
    this.watcher = new CheckpointWatcher(
      {
        ready: (stamp) => {
          if (isCandidate(stamp.path)) this.scheduler.enqueue(stamp.path);
        },
        removed: (path) => {
          this.scheduler.remove(path);
          const e = this.store.delete(path);
          if (e) this.publish(e);
        },
      },
      log,
    );
  }

  log(message: string): void {
    this.connection.console.log(message);
  }

  /** Settings from the client: re-analyse, re-scan or only re-publish, as the change needs. */
  applySettings(next: Settings): void {
    const prev = this.settings;
    this.settings = next;
    if (analysisKey(prev) !== analysisKey(next)) {
      this.predictions.clear();
      this.scheduler.restartAll();
    }
    if (scanKey(prev) !== scanKey(next) || prev.pollIntervalMs !== next.pollIntervalMs || prev.settleMs !== next.settleMs) this.startWatching();
    const shown = (s: Settings) => JSON.stringify([s.tolerance, s.severity, s.maxDiagnosticsPerLayer]);
    if (shown(prev) !== shown(next)) {
      for (const e of this.store.all()) {
        this.store.changed(e);
        this.publish(e);
      }
    }
  }

  setRoots(roots: string[]): void {
    this.roots = roots;
    this.startWatching();
  }

  startWatching(): void {
    const s = this.settings;
    this.watcher.configure({ roots: this.roots, include: includeGlobs(s), exclude: s.exclude, pollIntervalMs: s.pollIntervalMs, settleMs: s.settleMs });
  }

  /** Diagnostics, the listing-changed notification and (where fetched) a content refresh. */
  publish(e: Entry): void {
    const d = e.state === 'removed' ? { listing: [], file: [] } : diagnosticsOf(e, this.settings);
    void this.connection.sendDiagnostics({ uri: e.listingUri, diagnostics: d.listing });
    void this.connection.sendDiagnostics({ uri: e.fileUri, diagnostics: d.file });
    void this.connection.sendNotification(ListingChangedNotification.method, { uri: e.listingUri, fileUri: e.fileUri, version: e.version, state: e.state });
    if (this.features.contentRefresh && this.fetched.has(e.path)) {
      this.connection.workspace.textDocumentContent.refresh(e.listingUri).catch(() => undefined);
    }
  }

  predictionKey(e: Entry, scope: BalanceScope): string | undefined {
    const a = e.analysis;
    if (!a) return undefined;
    return JSON.stringify([e.path, a.files.map((f) => [f.size, f.mtimeMs]), analysisKey(this.settings), solveTolerance(this.settings), scopeLabel(scope)]);
  }

  knownPrediction(e: Entry, scope: BalanceScope): Prediction | undefined {
    const k = this.predictionKey(e, scope);
    return k === undefined ? undefined : this.predictions.get(k);
  }

  solveSpec(scope: BalanceScope, method?: string, tolerance?: number): SolveSpec {
    return { scope, method, tolerance: tolerance ?? solveTolerance(this.settings), compute: computeSpec(this.settings) };
  }

  /** The device the last quick fix ran on (the listing header shows it). */
  lastDevice: string | undefined;

  /** ΔR of a fix, solved on the balance worker (which keeps the solution for running the fix). */
  async predict(e: Entry, scope: BalanceScope, token?: CancellationToken): Promise<Prediction> {
    const key = this.predictionKey(e, scope);
    const known = key === undefined ? undefined : this.predictions.get(key);
    if (known) return known;
    const p = await this.actionWorker.run({ type: 'predict', path: e.path, options: analysisOptions(this.settings), solve: this.solveSpec(scope) }, { token });
    if (key !== undefined) {
      // Keys carry the file's size and time: old versions' predictions are never asked for again.
      if (this.predictions.size >= 1000) this.predictions.clear();
      this.predictions.set(key, p);
    }
    return p;
  }

  dispose(): void {
    this.watcher.dispose();
    this.analysisWorker.dispose();
    this.actionWorker.dispose();
  }
}
