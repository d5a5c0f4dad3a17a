// Diagnostics and code actions: every diagnostic has `source`, a `code` and typed `data` that
// code actions read; code actions carry the file and scope they balance.
import type { BalanceScope } from './requests';

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

