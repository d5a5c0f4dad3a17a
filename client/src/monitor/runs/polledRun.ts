// What every run source shares: polling, the per-step series, and sending the host either the
// whole series or only what it lacks. Subclasses read their source in poll() and a step's
// heatmap in frame().
import type { MonitorFrame, MonitorRunInfo, MonitorSeries } from '../../../../server/src/contract/monitor';
import { Poller } from './poller';
import type { RunEvents, RunSource } from './runEvents';
import { SeriesStore } from './seriesStore';

export abstract class PolledRun implements RunSource {
  protected readonly store = new SeriesStore();
  private readonly poller: Poller;
  /** Steps already sent (series or append); -1 until the whole series has been sent. */
  private sent = -1;
  /** Layers in the last whole series sent. */
  private sentLayers = 0;
  private lastError = '';

  protected constructor(
    readonly info: MonitorRunInfo,
    /** The file or folder named in notices. */
    private readonly where: string,
    protected readonly events: RunEvents,
    pollMs: number,
  ) {
    this.poller = new Poller(() => this.poll(), pollMs, (e) => this.reportError(e));
  }

  protected abstract poll(): Promise<void>;
  abstract frame(index: number): Promise<MonitorFrame>;

  get length(): number {
    return this.store.length;
  }

  snapshot(): MonitorSeries {
    return this.store.series(this.info.id);
  }

  start(): void {
    this.poller.start();
  }

  /** Polls now; resolves when the read and its events are done (tests, and a host's "refresh"). */
  pollNow(): Promise<void> {
    return this.poller.now();
  }

  dispose(): void {
    this.poller.dispose();
  }

  protected notice(level: 'info' | 'warning' | 'error', message: string): void {
    this.events.notice({ runId: this.info.id, level, message });
  }

  /** A poll went through: the next failure is news again. */
  protected pollSucceeded(): void {
    this.lastError = '';
  }

  private reportError(e: unknown): void {
    const message = `${this.where}: ${(e as Error).message ?? String(e)}`;
    // A persistent failure (permissions) would otherwise repeat every poll.
    if (message !== this.lastError) this.notice('error', message);
    this.lastError = message;
  }

  /** What the host holds no longer matches (a grown layout, a truncated log): it gets the whole series next. */
  protected invalidate(): void {
    if (this.sent >= 0) this.events.reset(this.info.id);
    this.sent = -1;
  }

  protected flush(): void {
    // Appends carry values in the layout the host already has: a series sent before any layer
    // was known (an empty log or folder) must be sent whole once layers appear.
    if (this.sent < 0 || this.store.layers.length !== this.sentLayers) {
      this.events.series(this.store.series(this.info.id));
      this.sent = this.store.length;
      this.sentLayers = this.store.layers.length;
    } else if (this.store.length > this.sent) {
      this.events.append(this.store.tail(this.info.id, this.sent));
      this.sent = this.store.length;
    }
  }
}
