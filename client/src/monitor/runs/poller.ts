// Runs an async task every `ms` without overlapping runs (a slow read delays the next poll
// instead of stacking), until disposed.

export class Poller {
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly ms: number,
    private readonly onError: (e: unknown) => void,
  ) {}

  start(): void {
    if (this.disposed || this.running || this.timer) return;
    this.run();
  }

  /** Polls now (the next timed poll follows `ms` after it). */
  now(): Promise<void> {
    if (this.running) return this.running;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.run();
  }

  private run(): Promise<void> {
    this.running = this.task()
      .catch((e) => this.onError(e))
      .finally(() => {
        this.running = undefined;
        // unref: a run being watched is no reason for a process to stay alive.
        if (!this.disposed) this.timer = setTimeout(() => void this.run(), this.ms).unref();
      });
    return this.running;
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
