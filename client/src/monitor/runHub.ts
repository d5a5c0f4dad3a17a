// The monitor's runs on the host side: one RunSource per log or checkpoint folder, their events
// turned into the webview's messages, frame requests answered (the latest per run wins). No
// `vscode` import: the panel passes `post`, and tests drive this with real log files.
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { MonitorHostMessage, MonitorRunInfo, MonitorSourceKind, MonitorViewMessage } from '../../../server/src/contract/monitor';
import { openCheckpointRun, openLogRun, type CostsOf, type RunEvents, type RunSource } from './runs/runSource';

export interface RunHubOptions {
  post: (m: MonitorHostMessage) => void;
  costsOf: CostsOf;
  pollMs?: number;
  settleMs?: number;
}

/** A source as the webview's saved state names it: a `file:` URI of a log or a folder. */
export interface RunSpec {
  kind: MonitorSourceKind;
  source: string;
}

export class RunHub {
  private readonly runs = new Map<string, RunSource>();
  /** Per run, the index of the newest frame request (older answers are dropped). */
  private readonly wanted = new Map<string, number>();
  private ready = false;

  constructor(private readonly o: RunHubOptions) {}

  /**
   * The kind of source a path is: a folder is watched for checkpoints, anything else is a log
   * (which may not exist yet: a training about to start writes it).
   */
  static specOf(path: string): RunSpec {
    const kind: MonitorSourceKind = existsSync(path) && statSync(path).isDirectory() ? 'checkpoints' : 'log';
    return { kind, source: pathToFileURL(path).href };
  }

  get infos(): MonitorRunInfo[] {
    return [...this.runs.values()].map((r) => r.info);
  }

  specs(): RunSpec[] {
    return this.infos.map((i) => ({ kind: i.kind, source: i.source }));
  }

  /** Adds a run (ignored when the same source is already shown); returns its id. */
  add(spec: RunSpec): string {
    const existing = this.infos.find((i) => i.source === spec.source);
    if (existing) return existing.id;
    const path = fileURLToPath(spec.source);
    let id = basename(path);
    for (let k = 2; this.runs.has(id); k++) id = `${basename(path)} (${k})`;
    const events = this.eventsFor(id);
    const run = spec.kind === 'log'
      ? openLogRun(path, id, events, { pollMs: this.o.pollMs })
      : openCheckpointRun(path, id, events, this.o.costsOf, { pollMs: this.o.pollMs, settleMs: this.o.settleMs });
    this.runs.set(id, run);
    if (this.ready) this.postRuns();
    run.start();
    return id;
  }

  remove(id: string): void {
    this.runs.get(id)?.dispose();
    this.runs.delete(id);
    this.wanted.delete(id);
    this.postRuns();
  }

  /** Messages from the webview; the ones that need the editor (open, save, pick) are the panel's. */
  async handle(m: MonitorViewMessage): Promise<void> {
    switch (m.type) {
      case 'ready':
        // A reloaded page starts empty: tell it the runs; each run's series follows from its source.
        this.ready = true;
        this.postRuns();
        for (const run of this.runs.values()) this.o.post({ type: 'series', series: run.snapshot() });
        break;
      case 'requestFrame':
        await this.answer(m.runId, m.index);
        break;
      case 'removeRun':
        this.remove(m.runId);
        break;
      default:
        break;
    }
  }

  /** The frame a webview cell names (for opening its checkpoint's listing). */
  frameOf(runId: string, index: number): ReturnType<RunSource['frame']> {
    const run = this.runs.get(runId);
    if (!run) return Promise.reject(new Error(`no run ${runId}`));
    return run.frame(index);
  }

  dispose(): void {
    for (const r of this.runs.values()) r.dispose();
    this.runs.clear();
  }

  private async answer(runId: string, index: number): Promise<void> {
    const run = this.runs.get(runId);
    if (!run) return;
    this.wanted.set(runId, index);
    try {
      const frame = await run.frame(index);
      if (this.wanted.get(runId) !== index || !this.runs.has(runId)) return;
      this.o.post({ type: 'frame', frame });
    } catch (e) {
      this.o.post({ type: 'notice', runId, level: 'error', message: (e as Error).message });
    }
  }

  private postRuns(): void {
    this.o.post({ type: 'runs', runs: this.infos });
  }

  private eventsFor(runId: string): RunEvents {
    // Series events before the page is ready are dropped: `ready` asks the sources again.
    const post = (m: MonitorHostMessage) => {
      if (this.ready && this.runs.has(runId)) this.o.post(m);
    };
    return {
      series: (series) => post({ type: 'series', series }),
      append: (a) => post({ type: 'seriesAppend', ...a }),
      reset: (id) => post({ type: 'runReset', runId: id }),
      notice: (n) => post({ type: 'notice', ...n }),
      label: () => {
        if (this.ready) this.postRuns();
      },
    };
  }
}
