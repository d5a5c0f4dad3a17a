// What every global solver and schedule reports.

export interface Progress {
  iteration: number;
  maxRelativeDeficit: number;
  R: number;
}

export interface SolveOptions {
  /** Stop when every variable's relative deficit is at most this (default 1e-7). */
  tolerance?: number;
  /** Upper bound on iterations (sweeps, Newton steps, or schedule steps). */
  maxIterations?: number;
  /** Seed for randomised schedules. */
  seed?: number;
  /** Called after each iteration; return false to stop early (cancellation). */
  onProgress?: (p: Progress) => boolean | void;
}

export interface SolveResult {
  /** log Λ per variable. */
  x: Float64Array;
  method: string;
  iterations: number;
  converged: boolean;
  /** Set when onProgress asked to stop. */
  cancelled?: boolean;
  RBefore: number;
  RAfter: number;
  maxRelativeDeficitBefore: number;
  maxRelativeDeficitAfter: number;
  /** Full passes over the cost blocks (stats, products, sweeps): the solver's work in weight reads. */
  passes: number;
}

export const DEFAULT_TOLERANCE = 1e-7;
