// Messages between the server's main thread and its worker threads.
import type { BalanceScope, FunctionCheck } from '../contract/requests';
import type { DeviceSetting } from '../contract/settings';
import type { CheckpointAnalysis, JobFailure } from './analysisTypes';

/** What changes the analysis itself (not only how it is shown). */
export interface AnalysisOptions {
  p: number;
  /** Activation for hidden layers the file leaves open; empty: none assumed. */
  activation: string;
}

export interface AnalyzeJob {
  type: 'analyze';
  path: string;
  options: AnalysisOptions;
}

export interface ComputeSpec {
  device: DeviceSetting;
  /** Interpreter for the torch backend; empty: python3. */
  python: string;
}

export interface SolveSpec {
  scope: BalanceScope;
  method?: string;
  tolerance: number;
  /** Where the solve and the scaling run; the CPU when absent. */
  compute?: ComputeSpec;
}

export interface PredictJob {
  type: 'predict';
  path: string;
  options: AnalysisOptions;
  solve: SolveSpec;
}

export interface BalanceJob {
  type: 'balance';
  path: string;
  options: AnalysisOptions;
  solve: SolveSpec;
  inPlace: boolean;
}

export type Job = AnalyzeJob | PredictJob | BalanceJob;

export interface Prediction {
  RBefore: number;
  RAfter: number;
  deltaR: number;
  maxRelativeDeficitAfter: number;
  iterations: number;
  converged: boolean;
  method: string;
}

export interface BalanceOutcome {
  cancelled: boolean;
  output?: string;
  written?: string[];
  solve?: Prediction & { maxRelativeDeficitBefore: number };
  verification?: FunctionCheck;
  writtenVerification?: FunctionCheck;
  /** Why the forward-pass check could not run, when it could not. */
  verificationSkipped?: string;
  /** The written checkpoint, analysed afresh. */
  analysis?: CheckpointAnalysis;
  /** Where the solve ran (cpu, cuda:0, mps). */
  device?: string;
}

export type ResultOf<J extends Job> = J extends AnalyzeJob ? CheckpointAnalysis : J extends PredictJob ? Prediction : BalanceOutcome;

export interface JobProgress {
  /** 0..100 over the whole job. */
  percent: number;
  message: string;
}

export interface WorkerRequest {
  id: number;
  job: Job;
}

export type WorkerReply =
  | { id: number; kind: 'progress'; progress: JobProgress }
  | { id: number; kind: 'done'; result: unknown }
  | { id: number; kind: 'failed'; failure: JobFailure };

/** workerData: a shared cell holding the id of the job to cancel (read by the solver's progress callback). */
export interface WorkerInit {
  cancel: SharedArrayBuffer;
}
