// The language server's custom requests, notifications and commands, typed once for both
// ends. No runtime dependency on any LSP library, so every bundle can import it; the server
// and client wrap the method names in their own connection calls.

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

// The training monitor's checkpoint folders: each checkpoint's unit costs, from the server.

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
  /** The input shapes fed, and where the sizes of dimensions the model leaves open came from. */
  inputs?: { name: string; shape: number[]; source: string; note?: string }[];
  /** Why the check proves nothing (outputs the same for every random input): never "verified" then. */
  inconclusive?: string;
  /** Discontinuous outputs (ArgMax, masks), judged on the continuous values feeding them. */
  judgedOn?: { output: string; via: string[]; flipped?: number; of?: number }[];
  /** The limit the outputs were held to, and why that one (half precision: the original's own sensitivity). */
  limit?: number;
  limitBasis?: string;
  notes?: string[];
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

