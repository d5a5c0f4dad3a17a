// The checkpoint summary page (a read-only custom editor): its buttons post these.

export const CHECKPOINT_EDITOR_VIEW_TYPE = 'synapticBalance.checkpointSummary';

export type CheckpointPageAction = 'openListing' | 'balanceNetwork' | 'checkBalance';

export type CheckpointPageMessage = { type: 'run'; action: CheckpointPageAction };
