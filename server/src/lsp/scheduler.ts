// Background analysis: a queue of checkpoints, one analysed at a time on the analysis worker.
// A newer need (settings changed, file removed) abandons the running job by replacing the
// thread, since its result would be thrown away anyway.
import type { CheckpointAnalysis } from '../app/analysis';
import type { CheckpointStore, Entry } from './store';
import { JobError, type WorkerClient } from './workers';
import type { AnalysisOptions } from './workerProtocol';

export interface SchedulerHooks {
  options(): AnalysisOptions;
  /** An entry's state, analysis or failure changed: publish it. */
  changed(e: Entry): void;
  analysed(e: Entry, a: CheckpointAnalysis): void;
  /** The file changed while it was read: hand it on again once it settles. */
  retryLater(path: string): void;
  /** How far the current busy spell is; `current` undefined when the queue ran dry. */
  progress(done: number, total: number, current: string | undefined): void;
  log(message: string): void;
}

export class AnalysisScheduler {
  private readonly queue = new Set<string>();
  private current: { path: string } | undefined;
  /** Analyses finished since the scheduler was last idle. */
  private done = 0;

  constructor(
    private readonly worker: WorkerClient,
    private readonly store: CheckpointStore,
    private readonly hooks: SchedulerHooks,
  ) {}

  /** Queues a checkpoint; `urgent` puts it first (someone is waiting for its listing). */
  enqueue(path: string, urgent = false): void {
    if (this.current?.path === path) return;
    if (urgent) {
      const rest = [...this.queue].filter((p) => p !== path);
      this.queue.clear();
      this.queue.add(path);
      for (const p of rest) this.queue.add(p);
    } else this.queue.add(path);
    const e = this.store.ensure(path);
    if (!e.analysis && e.state === 'failed') {
      this.store.setState(e, 'queued');
      this.hooks.changed(e);
    }
    this.pump();
  }

  /** Analyses every known checkpoint again (the analysis settings changed). */
  restartAll(): void {
    const running = this.current;
    this.current = undefined;
    if (running) this.worker.restart();
    for (const e of this.store.all()) this.queue.add(e.path);
    this.pump();
  }

  remove(path: string): void {
    this.queue.delete(path);
    if (this.current?.path === path) {
      this.current = undefined;
      this.worker.restart();
      this.pump();
    }
  }

  private pump(): void {
    if (this.current) return;
    const next = this.queue.values().next();
    if (next.done) {
      this.done = 0;
      this.hooks.progress(0, 0, undefined);
      return;
    }
    this.queue.delete(next.value);
    this.run(next.value);
    this.hooks.progress(this.done, this.done + 1 + this.queue.size, next.value);
  }

  private run(path: string): void {
    const job = { path };
    this.current = job;
    const e = this.store.ensure(path);
    this.store.setState(e, 'analysing');
    this.hooks.changed(e);
    this.worker
      .run({ type: 'analyze', path, options: this.hooks.options() })
      .then(
        (a) => {
          if (this.current !== job) return;
          this.store.setAnalysis(e, a);
          this.hooks.analysed(e, a);
          this.hooks.changed(e);
        },
        (err: unknown) => {
          if (this.current !== job) return;
          const f = err instanceof JobError ? err.failure : { kind: 'unreadable' as const, message: String(err) };
          if (f.kind === 'changed' || f.kind === 'cancelled') {
            this.store.setState(e, e.analysis ? 'analysed' : 'queued');
            if (f.kind === 'changed') this.hooks.retryLater(path);
          } else {
            this.hooks.log(`${path}: ${f.kind}: ${f.message}`);
            this.store.setFailure(e, f);
          }
          this.hooks.changed(e);
        },
      )
      .finally(() => {
        if (this.current !== job) return;
        this.current = undefined;
        this.done++;
        this.pump();
      });
  }
}
