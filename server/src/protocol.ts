// The language server's own protocol: what the server, the VS Code client and the webview
// agree on, typed once. No runtime dependency on any LSP library, so every bundle can import
// it; the server and client wrap the method names in their own connection calls.

// ---------------------------------------------------------------------------------------
// Listings: each checkpoint is shown as a read-only text document under its own scheme.
// ---------------------------------------------------------------------------------------

/** URI scheme of listing documents: `synbal-listing:/path/to/model.onnx.listing`. */
export const LISTING_SCHEME = 'synbal-listing';
export const LISTING_SUFFIX = '.listing';
/** Language id the client gives listing documents (its grammar lives in syntaxes/). */
export const LISTING_LANGUAGE_ID = 'synbal-listing';

/**
 * The listing URI of a checkpoint's `file:` URI: the same authority and path under the listing
 * scheme, `.listing` appended (`synbal-listing:///models/m.onnx.listing`). The empty authority
 * is kept: Neovim names a buffer by its URI only when it has `://`. VS Code writes the same
 * URI as `synbal-listing:/models/m.onnx.listing`; both forms name the same listing.
 */
export function listingUriOf(fileUri: string): string {
  if (!fileUri.startsWith('file:')) throw new Error(`not a file: URI: ${fileUri}`);
  return `${LISTING_SCHEME}:${fileUri.slice('file:'.length)}${LISTING_SUFFIX}`;
}

/** The checkpoint's `file:` URI of a listing URI, or undefined when it is not one. */
export function fileUriOfListing(listingUri: string): string | undefined {
  const prefix = `${LISTING_SCHEME}:`;
  if (!listingUri.startsWith(prefix) || !listingUri.endsWith(LISTING_SUFFIX)) return undefined;
  const rest = listingUri.slice(prefix.length, listingUri.length - LISTING_SUFFIX.length);
  return rest.startsWith('//') ? `file:${rest}` : `file://${rest}`;
}

// ---------------------------------------------------------------------------------------
// Settings: section `synapticBalance` (workspace/configuration, didChangeConfiguration, or
// initializationOptions for clients that have neither).
// ---------------------------------------------------------------------------------------

export const SETTINGS_SECTION = 'synapticBalance';

export type SeverityName = 'error' | 'warning' | 'information' | 'hint';

/** Where quick fixes balance: `auto` is the fastest GPU backend that starts (large models only), else the CPU. */
export type DeviceSetting = 'auto' | 'cpu' | 'cuda' | 'mps';
export const DEVICE_SETTINGS: readonly DeviceSetting[] = ['auto', 'cpu', 'cuda', 'mps'];

export interface Settings {
  /** Regularizer Σ|w|^p that costs and balance are measured with (p > 0). */
  regularizerP: number;
  /** A balanceable unit is out of balance when |IN − OUT| / (IN + OUT) exceeds this. */
  tolerance: number;
  /** Severity of out-of-balance diagnostics. */
  severity: SeverityName;
  /** Quick fixes overwrite the checkpoint (keeping `<file>.bak`) instead of writing `<name>.balanced.<ext>`. */
  inPlace: boolean;
  /** Globs (relative to each workspace folder) of checkpoints to analyse; empty: every extension a known format uses. */
  include: string[];
  /** Globs never scanned. */
  exclude: string[];
  /** Per layer, at most this many unit diagnostics (the worst first). */
  maxDiagnosticsPerLayer: number;
  /** Activation assumed for hidden layers whose file does not state one (e.g. `relu`); empty: none assumed. */
  activation: string;
  /** How often the workspace is polled for new or rewritten checkpoints. */
  pollIntervalMs: number;
  /** A file is analysed once its size and modification time have been still this long. */
  settleMs: number;
  /** Where quick fixes compute (costs, products, scaling): auto, cpu, cuda or mps. */
  device: DeviceSetting;
  /** Python interpreter for the torch backend; empty: the Python extension's, else `python3`. */
  python: string;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  regularizerP: 2,
  tolerance: 1e-3,
  severity: 'warning',
  inPlace: false,
  include: [],
  exclude: ['**/node_modules/**', '**/.git/**'],
  maxDiagnosticsPerLayer: 10,
  activation: '',
  pollIntervalMs: 2000,
  settleMs: 1000,
  device: 'auto',
  python: '',
});

// ---------------------------------------------------------------------------------------
// Custom requests and notifications.
// ---------------------------------------------------------------------------------------

/** A request's method name, with its parameter and result types attached for both ends. */
export interface RequestDef<P, R> {
  readonly method: string;
  /** Never set: carries the types. */
  readonly _types?: { params: P; result: R };
}

export interface NotificationDef<P> {
  readonly method: string;
  readonly _types?: { params: P };
}

function request<P, R>(method: string): RequestDef<P, R> {
  return { method };
}

function notification<P>(method: string): NotificationDef<P> {
  return { method };
}

export type CheckpointState = 'queued' | 'analysing' | 'analysed' | 'failed' | 'removed';

export interface ListingParams {
  /** A listing URI, or the checkpoint's own `file:` URI. */
  uri: string;
}

export interface ListingResult {
  uri: string;
  fileUri: string;
  /** Grows whenever the text changes (new analysis, settings). */
  version: number;
  state: CheckpointState;
  text: string;
}

/** The listing of a checkpoint (also served as the standard `workspace/textDocumentContent`). */
export const ListingRequest = request<ListingParams, ListingResult>('synbal/listing');

export interface CheckpointInfo {
  fileUri: string;
  listingUri: string;
  state: CheckpointState;
  version: number;
  format?: string;
  parameters?: number;
  balanceable?: number;
  /** Units above the tolerance. */
  unbalanced?: number;
  maxRelativeDeficit?: number;
  R?: number;
  error?: string;
}

/** Every checkpoint the server knows, for status bars and trees. */
export const CheckpointsRequest = request<Record<string, never>, CheckpointInfo[]>('synbal/checkpoints');

export interface ListingChangedParams {
  uri: string;
  fileUri: string;
  version: number;
  state: CheckpointState;
}

/** Sent whenever a listing's text or state changes (also for clients without textDocumentContent/refresh). */
export const ListingChangedNotification = notification<ListingChangedParams>('synbal/listingChanged');

// ---------------------------------------------------------------------------------------
// Commands (workspace/executeCommand): quick fixes and code lenses run these on the server.
// ---------------------------------------------------------------------------------------

export const Commands = {
  /** Balance a unit, a layer or the network and write the result: arguments [BalanceArgs]. */
  balance: 'synbal.balance',
  /** Analyse again: arguments [ReanalyzeArgs] or none (every checkpoint). */
  reanalyze: 'synbal.reanalyze',
} as const;

export type BalanceScope =
  | { kind: 'network' }
  | { kind: 'layer'; layer: string; tied?: boolean }
  | { kind: 'unit'; layer: string; index: number };

/** `network`, `layer:NAME`, `layer-tied:NAME` or `unit:NAME#INDEX`, as the CLI's --scope writes it. */
export function scopeLabel(s: BalanceScope): string {
  if (s.kind === 'network') return 'network';
  if (s.kind === 'unit') return `unit:${s.layer}#${s.index}`;
  return `${s.tied ? 'layer-tied' : 'layer'}:${s.layer}`;
}

export interface BalanceArgs {
  /** The checkpoint's `file:` URI. */
  file: string;
  scope: BalanceScope;
  /** Overrides the `inPlace` setting. */
  inPlace?: boolean;
  /** Balance for Σ|w|^p with this p instead of the `regularizerP` setting (which stays as it is). */
  regularizerP?: number;
  /** Solver for network scope (the engine's method names); default `optimal`. */
  method?: string;
  /** Stop when every unit's relative deficit is at most this; default well below the diagnostics' tolerance. */
  tolerance?: number;
}

export interface FunctionCheck {
  maxAbsolute: number;
  maxRelative: number;
  samples: number;
}

export interface BalanceResult {
  cancelled: boolean;
  file: string;
  /** `file:` URI of the written checkpoint and of its listing. */
  output?: string;
  listingUri?: string;
  /** Every file written (shards, external data), as `file:` URIs. */
  written?: string[];
  method?: string;
  iterations?: number;
  converged?: boolean;
  RBefore?: number;
  RAfter?: number;
  maxRelativeDeficitBefore?: number;
  maxRelativeDeficitAfter?: number;
  /** The balanced network against the original, before writing; then the written file read back. */
  verification?: FunctionCheck;
  writtenVerification?: FunctionCheck;
  /** Why the forward-pass check could not run (an operator without a forward pass), when it could not. */
  verificationSkipped?: string;
}

export interface ReanalyzeArgs {
  file?: string;
}

// ---------------------------------------------------------------------------------------
// Diagnostics: every one has `source`, a `code` and typed `data` that code actions read.
// ---------------------------------------------------------------------------------------

export const DIAGNOSTIC_SOURCE = 'synaptic-balance';

export const DiagnosticCodes = {
  /** On a listing's layer line: the layer holds units above the tolerance. */
  layerUnbalanced: 'layer-unbalanced',
  /** On a listing's unit line: this unit is above the tolerance. */
  unitUnbalanced: 'unit-unbalanced',
  /** On a listing's layer line (information): units that cannot be balanced, and why. */
  notBalanceable: 'not-balanceable',
  /** On the checkpoint's `file:` URI: the summary, pointing into the listing. */
  checkpointUnbalanced: 'checkpoint-unbalanced',
  /** On the checkpoint's `file:` URI: it could not be read or understood. */
  unreadable: 'unreadable',
  /** On the checkpoint's `file:` URI: no known format matches its bytes. */
  unknownFormat: 'unknown-format',
} as const;

export type DiagnosticCode = (typeof DiagnosticCodes)[keyof typeof DiagnosticCodes];

interface DataBase {
  /** The checkpoint's `file:` URI. */
  file: string;
}

export interface UnitUnbalancedData extends DataBase {
  code: typeof DiagnosticCodes.unitUnbalanced;
  layer: string;
  unit: number;
  in: number;
  out: number;
  relativeDeficit: number;
  lambda?: number;
  deltaR?: number;
}

export interface LayerUnbalancedData extends DataBase {
  code: typeof DiagnosticCodes.layerUnbalanced;
  layer: string;
  unbalanced: number;
  balanceable: number;
  worstUnit: number;
  worstRelativeDeficit: number;
  /** Predicted ΔR of balancing each unit of the layer, and of one shared λ. */
  eachDeltaR?: number;
  tiedDeltaR?: number;
}

export interface NotBalanceableData extends DataBase {
  code: typeof DiagnosticCodes.notBalanceable;
  layer: string;
  units: number;
  reason: string;
}

export interface CheckpointUnbalancedData extends DataBase {
  code: typeof DiagnosticCodes.checkpointUnbalanced;
  listing: string;
  unbalanced: number;
  balanceable: number;
  layers: number;
  worst: { layer: string; unit: number; relativeDeficit: number };
}

export interface FileProblemData extends DataBase {
  code: typeof DiagnosticCodes.unreadable | typeof DiagnosticCodes.unknownFormat;
  message: string;
}

export type DiagnosticData = UnitUnbalancedData | LayerUnbalancedData | NotBalanceableData | CheckpointUnbalancedData | FileProblemData;

// ---------------------------------------------------------------------------------------
// Code actions: built from diagnostics' data, resolved lazily (predicted ΔR, command).
// ---------------------------------------------------------------------------------------

/** The "fix all" source action's kind. */
export const FIX_ALL_KIND = 'source.fixAll.synbal';

export interface CodeActionData {
  file: string;
  scope: BalanceScope;
}

// ---------------------------------------------------------------------------------------
// Training monitor: the extension host (client/src/monitor) and the webview (webview/src)
// exchange these messages. Large arrays travel as Float32Array/Float64Array (structured
// clone, never JSON numbers). A run is one balance log or one watched checkpoint folder.
// ---------------------------------------------------------------------------------------

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
}

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
  /** New steps at the end of a run's series (same layout as `MonitorSeries`). */
  | { type: 'seriesAppend'; runId: string; steps: Float64Array; times: Float64Array; values: Float64Array }
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

export interface CheckpointCostsParams {
  /** The checkpoint's `file:` URI. */
  uri: string;
}

export interface CheckpointLayerCosts {
  name: string;
  /** IN and OUT cost per unit under the configured regularizer, little-endian float32, base64. */
  in: string;
  out: string;
  /** ‖W‖_F of the layer's incoming weights. */
  weightNorm: number;
}

/** Per-layer unit costs of a checkpoint (analysed like any other), for monitor frames from checkpoint folders. */
export interface CheckpointCostsResult {
  fileUri: string;
  regularizerP: number;
  layers: CheckpointLayerCosts[];
}

export const CheckpointCostsRequest = request<CheckpointCostsParams, CheckpointCostsResult>('synbal/checkpointCosts');

// ---------------------------------------------------------------------------------------
// The checkpoint summary page (a read-only custom editor): its buttons post these.
// ---------------------------------------------------------------------------------------

export const CHECKPOINT_EDITOR_VIEW_TYPE = 'synapticBalance.checkpointSummary';

export type CheckpointPageAction = 'openListing' | 'balanceNetwork' | 'checkBalance';

export type CheckpointPageMessage = { type: 'run'; action: CheckpointPageAction };
