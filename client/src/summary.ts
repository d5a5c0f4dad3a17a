// What the status bar says about the workspace, from `synbal/checkpoints`. Pure, for tests.
import type { CheckpointInfo } from '../../server/src/contract/requests';

export interface Summary {
  checkpoints: number;
  unbalanced: number;
  /** Checkpoints queued or being analysed. */
  busy: number;
  failed: number;
  /** The checkpoint with the most units out of balance (then the largest deficit), if any. */
  worst?: CheckpointInfo;
}

export function summarize(list: readonly CheckpointInfo[]): Summary {
  const live = list.filter((c) => c.state !== 'removed');
  let worst: CheckpointInfo | undefined;
  for (const c of live) {
    if (!worst || rank(c) > rank(worst) || (rank(c) === rank(worst) && (c.maxRelativeDeficit ?? -1) > (worst.maxRelativeDeficit ?? -1))) worst = c;
  }
  return {
    checkpoints: live.length,
    unbalanced: live.reduce((n, c) => n + (c.unbalanced ?? 0), 0),
    busy: live.filter((c) => c.state === 'queued' || c.state === 'analysing').length,
    failed: live.filter((c) => c.state === 'failed').length,
    worst,
  };
}

function rank(c: CheckpointInfo): number {
  return c.unbalanced ?? (c.state === 'failed' ? 0 : -1);
}

function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}

/** "3 checkpoints, 412 unbalanced units" (and failures), without the spinner. */
export function summaryText(s: Summary): string {
  const parts = [plural(s.checkpoints, 'checkpoint'), `${plural(s.unbalanced, 'unbalanced unit')}`];
  if (s.failed > 0) parts.push(`${s.failed} failed`);
  return parts.join(', ');
}

/** The status bar text: a spinner while analysing. */
export function statusText(s: Summary): string {
  if (s.busy > 0) return `$(sync~spin) Synaptic Balance: analysing ${s.busy} of ${s.checkpoints}…`;
  return `$(${s.unbalanced > 0 ? 'warning' : 'check'}) ${summaryText(s)}`;
}
