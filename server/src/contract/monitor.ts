// Training monitor: the extension host (client/src/monitor) and the webview (webview/src)
// exchange these messages. Large arrays travel as Float32Array/Float64Array (structured
// clone, never JSON numbers). A run is one balance log or one watched checkpoint folder.
// Types and constants only: the webview bundle imports this module.

/** Where a run's frames come from. */
export type MonitorSourceKind = 'log' | 'checkpoints';

export interface MonitorRunInfo {
  /** Stable id within the panel (the source path, made unique). */
  id: string;
  /** Shown above the run's heatmap: the log's `run` name, else the file or folder name. */
  label: string;
  kind: MonitorSourceKind;
  /** The log file or folder, as a `file:` URI. */
  source: string;
}

/** Per-layer scalars of one logged step: the time series under the heatmap. */
export interface MonitorLayerScalars {
  /** Σ_units |IN − OUT| (costs as logged). */
  totalDeficit: number;
  /** Σ_units (IN + OUT)/2 … the regularizer R restricted to the layer, as logged or computed. */
  R: number;
  /** ‖W‖_F of the layer's incoming weights, when logged; NaN when not. */
  weightNorm: number;
}

/**
 * The time series of a run: one entry per logged step, in log order. Sent whole when a run is
 * added, then extended by `seriesAppend`. Layout: `values[(i * layers.length + l) * 3 + k]`
 * with k = 0 total deficit, 1 R, 2 ‖W‖_F — one flat array so it transfers without copying.
 */
export interface MonitorSeries {
  runId: string;
  layers: string[];
  /** Units per layer (the heatmap rows' lengths). */
  units: number[];
  steps: Float64Array;
  /** Wall time of each step, seconds since the epoch. */
  times: Float64Array;
  values: Float64Array;
  /** Steps where the network was balanced (absent: none). */
  balance?: MonitorBalanceEvents;
}

/**
 * The balance events of a run (steps where the training process balanced the network), sparse:
 * `index[e]` is the event's position in the run's series (ascending), and
 * `values[e * BALANCE_FIELDS + k]` its figures, k = BALANCE_DELTA_R … BALANCE_CONVERGED
 * (NaN where not logged; converged is 1, 0 or NaN).
 */
export interface MonitorBalanceEvents {
  index: Float64Array;
  values: Float64Array;
}

export const BALANCE_DELTA_R = 0;
export const BALANCE_R_BEFORE = 1;
export const BALANCE_R_AFTER = 2;
export const BALANCE_ITERATIONS = 3;
export const BALANCE_MAX_DEFICIT = 4;
export const BALANCE_CONVERGED = 5;
export const BALANCE_FIELDS = 6;

export interface MonitorLayerFrame {
  name: string;
  /** Relative deficit |IN − OUT| / (IN + OUT) per unit, in [0, 1]; NaN for a dead unit (IN = OUT = 0). */
  relativeDeficit: Float32Array;
  /** Incoming and outgoing costs per unit, when known (hover shows them). */
  in?: Float32Array;
  out?: Float32Array;
}

/** The heatmap of one step. */
export interface MonitorFrame {
  runId: string;
  /** Position of the step in the run's series. */
  index: number;
  step: number;
  time: number;
  layers: MonitorLayerFrame[];
  /** The checkpoint this step was analysed from (`file:` URI), when the run watches checkpoints. */
  checkpoint?: string;
}

/** Host → webview. */
export type MonitorHostMessage =
  | { type: 'runs'; runs: MonitorRunInfo[] }
  | { type: 'series'; series: MonitorSeries }
  /** New steps at the end of a run's series (same layout as `MonitorSeries`; `balance.index` counts from the series' start). */
  | { type: 'seriesAppend'; runId: string; steps: Float64Array; times: Float64Array; values: Float64Array; balance?: MonitorBalanceEvents }
  /** The run's source was truncated or replaced: its series restarts empty. */
  | { type: 'runReset'; runId: string }
  | { type: 'frame'; frame: MonitorFrame }
  /** Something the user should see (a malformed line, an unreadable checkpoint); the run goes on. */
  | { type: 'notice'; runId?: string; level: 'info' | 'warning' | 'error'; message: string };

/** Webview → host. */
export type MonitorViewMessage =
  | { type: 'ready' }
  /** Ask for the heatmap of step `index` of a run (the latest request per run wins). */
  | { type: 'requestFrame'; runId: string; index: number }
  /** A heatmap cell was clicked: open the step's checkpoint listing at that unit, when there is one. */
  | { type: 'openUnit'; runId: string; index: number; layer: string; unit: number }
  /** Save the current frame's PNG (bytes) or the series' CSV (text) where the user chooses. */
  | { type: 'exportPng'; suggestedName: string; png: Uint8Array }
  | { type: 'exportCsv'; suggestedName: string; csv: string }
  /** Ask the host to add another run (a log or folder the user picks). */
  | { type: 'addRun' }
  | { type: 'removeRun'; runId: string };

/** What the webview keeps with `setState` so a reloaded window restores the panel. */
export interface MonitorViewState {
  sources: { kind: MonitorSourceKind; source: string }[];
  followLive: boolean;
  /** Selected step index per run id, when not following live. */
  selected: Record<string, number>;
}

/** View type of the monitor panel (registered with a `WebviewPanelSerializer`). */
export const MONITOR_VIEW_TYPE = 'synapticBalance.trainingMonitor';

/**
 * The built-in demo training's runs (server/src/monitor/demoRuns.ts trains them): each writes
 * its balance log as `<name>.jsonl` in the output folder, which the client's monitor follows.
 */
export const DEMO_RUNS = ['sgd', 'sgd-l2', 'balanced-large-lr', 'rebalanced-large-lr'] as const;
export type DemoRunName = (typeof DEMO_RUNS)[number];

export function demoLogName(run: DemoRunName): string {
  return `${run}.jsonl`;
}
