// Messages between the server's main thread and its worker threads.
import type { AnalysisOptions, BalanceOutcome, BalanceRequest, JobProgress, Prediction, PredictRequest } from '../app/requests';
import type { CheckpointAnalysis, JobFailure } from '../app/analysis';

export type { AnalysisOptions, BalanceOutcome, ComputeSpec, JobProgress, Prediction, SolveSpec } from '../app/requests';

export interface AnalyzeJob {
  type: 'analyze';
  path: string;
  options: AnalysisOptions;
}

export interface PredictJob extends PredictRequest {
  type: 'predict';
}

export interface BalanceJob extends BalanceRequest {
  type: 'balance';
}

export type Job = AnalyzeJob | PredictJob | BalanceJob;

export type ResultOf<J extends Job> = J extends AnalyzeJob ? CheckpointAnalysis : J extends PredictJob ? Prediction : BalanceOutcome;

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
