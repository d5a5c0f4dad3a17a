// The training monitor's data side, as the extension host (client/src/monitor) uses it: a run
// from a balance log, or from a folder of checkpoints. The work is in the modules re-exported.
export type { CostsOf, RunEvents, RunSource } from './runEvents';
export { openLogRun, LogRun } from './logRun';
export { openCheckpointRun, CheckpointRun, CHECKPOINT_EXTENSIONS } from './checkpointRun';
