// What a run tells its host (client/src/monitor): the contract both sides code against.
import type { MonitorBalanceEvents, MonitorFrame, MonitorRunInfo, MonitorSeries } from '../../../../server/src/contract/monitor';
import type { CheckpointCostsResult } from '../../../../server/src/contract/requests';

export interface RunEvents {
  /** The whole series: first load, and after a reset. */
  series(s: MonitorSeries): void;
  append(a: { runId: string; steps: Float64Array; times: Float64Array; values: Float64Array; balance?: MonitorBalanceEvents }): void;
  reset(runId: string): void;
  notice(n: { runId: string; level: 'info' | 'warning' | 'error'; message: string }): void;
  /** The log's `run` name once known. */
  label?(label: string): void;
}

export interface RunSource {
  readonly info: MonitorRunInfo;
  /** Begins polling; emits series() after the first read. */
  start(): void;
  /** Stops timers, closes files. */
  dispose(): void;
  /** Rejects with an Error naming the file for a bad index. */
  frame(index: number): Promise<MonitorFrame>;
  /** Steps known so far. */
  readonly length: number;
  /** The whole series as known now (for a webview that reloaded). */
  snapshot(): MonitorSeries;
}

export type CostsOf = (file: string) => Promise<CheckpointCostsResult>;
