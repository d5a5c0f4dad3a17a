// The use cases' requests and outcomes: plain data, so the language server can post them across
// a worker thread and the command line can build them from its arguments once.
import type { BalanceScope, FunctionCheck } from '../contract/requests';
import type { DeviceSetting } from '../contract/settings';
import type { BackendName } from '../compute/backend';
import type { CheckpointAnalysis } from './analysis';

/** What changes the analysis itself (not only how it is shown). */
export interface AnalysisOptions {
  /** Power of the regularizer Σ|w|^p. */
  p: number;
  /** A sum of powers (`0.5*L2+0.1*L1`) instead of `p`, where a front end offers it. */
  regularizer?: string;
  /** Activation for hidden layers the file leaves open; empty: none assumed. */
  activation: string;
}

export interface ComputeSpec {
  device: DeviceSetting;
  /** Interpreter for the torch backend; empty: python3. */
  python: string;
  /** One backend by name instead of choosing by device. */
  backend?: BackendName;
}

export interface SolveSpec {
  scope: BalanceScope;
  method?: string;
  tolerance: number;
  /** For the randomised schedules. */
  seed?: number;
  maxIterations?: number;
  /** Where the solve and the scaling run; the CPU when absent. */
  compute?: ComputeSpec;
}

/** Where a balanced copy goes. */
export type OutputSpec =
  | { kind: 'beside' }
  | { kind: 'in-place' }
  | { kind: 'path'; path: string };

/** The one verification policy, as a front end asks for it. */
export interface VerifySpec {
  /** Check the written copy against the original before it replaces anything. */
  enabled: boolean;
  /** Keep a copy whose outputs differ, or that could not be checked. */
  force: boolean;
  /**
   * Refuse to write when no check can run (an operator without a forward pass) or when the check
   * is inconclusive (outputs the same for every random input).
   */
  requireCheck: boolean;
  /** Input shapes by input name ('' for a model's only input); open dimensions otherwise get realistic sizes. */
  inputShapes?: Record<string, number[]>;
}

export interface PredictRequest {
  path: string;
  options: AnalysisOptions;
  solve: SolveSpec;
}

export interface BalanceRequest extends PredictRequest {
  output: OutputSpec;
  verify: VerifySpec;
  /** Analyse the written file afresh (the language server shows it). */
  analyseWritten?: boolean;
}

export interface Prediction {
  RBefore: number;
  RAfter: number;
  deltaR: number;
  maxRelativeDeficitAfter: number;
  iterations: number;
  converged: boolean;
  method: string;
}

/** A verification's figures and what ran it. */
export interface Verification extends FunctionCheck {
  method: string;
  steps: number;
}

export interface BalanceOutcome {
  cancelled: boolean;
  /** The file balanced. */
  input?: string;
  format?: string;
  regularizer?: string;
  output?: string;
  written?: string[];
  solve?: Prediction & { maxRelativeDeficitBefore: number; maxRelativeDeficitAfter: number };
  /** The written copy against the original (the same check, named for both moments the LSP shows). */
  verification?: Verification;
  writtenVerification?: Verification;
  /** Why the format's own check could not run, or why no check ran, when that happened. */
  verificationSkipped?: string;
  /** The written checkpoint, analysed afresh (when asked). */
  analysis?: CheckpointAnalysis;
  /** Where the solve ran (cpu, cuda:0, mps). */
  device?: string;
  /** Λ of every unit of every hidden layer (1 for units not scaled). */
  layerScales?: Record<string, number[]>;
  /** Nothing balanceable: nothing was written. */
  nothingToBalance?: boolean;
  /** Then: why, per hidden layer (the reasons a check gives). */
  whyNothing?: string[];
}

export interface JobProgress {
  /** 0..100 over the whole job. */
  percent: number;
  message: string;
}

/** How a front end follows and stops a use case. */
export interface JobHooks {
  cancelled(): boolean;
  progress(p: JobProgress): void;
  /** Notes a front end may show (why a device was not used). */
  note?(text: string): void;
}

