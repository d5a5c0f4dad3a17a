// Work-done progress for a fix, shown only once it has taken more than a moment; cancellable
// from the client's progress UI as well as by cancelling the request.
import { basename } from 'node:path';
import { CancellationTokenSource, WorkDoneProgressReporter, type CancellationToken, type Connection } from 'vscode-languageserver';

export interface FixProgress {
  report(percent: number, message: string): void;
  done(): void;
  /** Cancelled by the request's token or by the progress UI. */
  readonly token: CancellationToken;
}

export function fixProgress(connection: Connection, supported: boolean, attached: WorkDoneProgressReporter, requestToken: CancellationToken, title: string, delayMs = 250): FixProgress {
  const source = new CancellationTokenSource();
  const sub = requestToken.onCancellationRequested(() => source.cancel());
  let reporter: WorkDoneProgressReporter | undefined;
  let last = { percent: 0, message: '' };
  let finished = false;
  const begin = (r: WorkDoneProgressReporter) => {
    if (finished) return void r.done();
    reporter = r;
    r.begin(title, last.percent, last.message, true);
  };
  const timer = setTimeout(() => {
    if (!WorkDoneProgressReporter.isNullInstance(attached)) begin(attached);
    else if (supported) {
      connection.window.createWorkDoneProgress().then((r) => {
        r.token.onCancellationRequested(() => source.cancel());
        begin(r);
      }, () => undefined);
    }
  }, delayMs);
  return {
    token: source.token,
    report(percent, message) {
      last = { percent, message };
      reporter?.report(percent, message);
    },
    done() {
      finished = true;
      clearTimeout(timer);
      reporter?.done();
      reporter = undefined;
      sub.dispose();
      source.dispose();
    },
  };
}

/**
 * Progress of background analysis, one report for a whole busy spell (done of total, and the
 * file at hand); shown only once the spell has lasted a moment, so small workspaces stay quiet.
 */
export class AnalysisProgress {
  private reporter: WorkDoneProgressReporter | undefined;
  private creating = false;
  private timer: NodeJS.Timeout | undefined;
  private last = { percent: 0, message: '' };

  constructor(
    private readonly connection: Connection,
    private readonly supported: boolean,
    private readonly delayMs = 500,
  ) {}

  update(done: number, total: number, current: string | undefined): void {
    if (!this.supported) return;
    if (current === undefined) return this.end();
    this.last = { percent: total > 0 ? (100 * done) / total : 0, message: `${done + 1} of ${total}: ${basename(current)}` };
    if (this.reporter) return this.reporter.report(this.last.percent, this.last.message);
    if (this.timer || this.creating) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.creating = true;
      this.connection.window.createWorkDoneProgress().then(
        (r) => {
          this.creating = false;
          this.reporter = r;
          r.begin('Synaptic Balance: analysing checkpoints', this.last.percent, this.last.message, false);
        },
        () => (this.creating = false),
      );
    }, this.delayMs);
  }

  private end(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.reporter?.done();
    this.reporter = undefined;
  }
}
