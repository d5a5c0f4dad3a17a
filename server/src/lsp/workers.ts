// The main thread's handle on one worker thread: a queue of jobs (one runs at a time), their
// progress and cancellation, and a fresh thread whenever one dies (a file that exhausts memory
// must not take the server with it).
import { Worker } from 'node:worker_threads';
import type { CancellationToken } from 'vscode-languageserver';
import type { JobFailure } from '../app/analysis';
import type { Job, JobProgress, ResultOf, WorkerInit, WorkerReply, WorkerRequest } from './workerProtocol';

export class JobError extends Error {
  constructor(readonly failure: JobFailure) {
    super(failure.message);
  }
}

export interface RunOptions {
  onProgress?: (p: JobProgress) => void;
  token?: CancellationToken;
}

interface Pending {
  id: number;
  job: Job;
  opts: RunOptions;
  resolve: (value: unknown) => void;
  reject: (e: JobError) => void;
}

export class WorkerClient {
  private worker: Worker | undefined;
  private readonly cell = new Int32Array(new SharedArrayBuffer(4));
  private running: Pending | undefined;
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private disposed = false;

  constructor(
    private readonly script: string,
    private readonly name: string,
    private readonly log: (message: string) => void,
  ) {}

  get busy(): boolean {
    return this.running !== undefined || this.queue.length > 0;
  }

  run<J extends Job>(job: J, opts: RunOptions = {}): Promise<ResultOf<J>> {
    return new Promise((resolve, reject) => {
      if (opts.token?.isCancellationRequested) return reject(new JobError({ kind: 'cancelled', message: 'cancelled' }));
      const id = this.nextId++;
      const sub = opts.token?.onCancellationRequested(() => this.cancel(id));
      this.queue.push({
        id,
        job,
        opts,
        resolve: (v) => {
          sub?.dispose();
          resolve(v as ResultOf<J>);
        },
        reject: (e) => {
          sub?.dispose();
          reject(e);
        },
      });
      this.pump();
    });
  }

  /** Stops a job: dropped if queued; if running, the solver stops at its next progress check. */
  cancel(id: number): void {
    if (this.running?.id === id) {
      Atomics.store(this.cell, 0, id);
      return;
    }
    const k = this.queue.findIndex((p) => p.id === id);
    if (k >= 0) this.queue.splice(k, 1)[0].reject(new JobError({ kind: 'cancelled', message: 'cancelled' }));
  }

  /** Abandons the running job at once (its results are no longer wanted) by replacing the thread. */
  restart(): void {
    const w = this.worker;
    this.worker = undefined;
    const r = this.running;
    this.running = undefined;
    if (w) void w.terminate();
    r?.reject(new JobError({ kind: 'cancelled', message: 'cancelled' }));
    this.pump();
  }

  dispose(): void {
    this.disposed = true;
    for (const p of this.queue.splice(0)) p.reject(new JobError({ kind: 'cancelled', message: 'the server is shutting down' }));
    this.restart();
  }

  private spawn(): Worker {
    const w = new Worker(this.script, { workerData: { cancel: this.cell.buffer as SharedArrayBuffer } satisfies WorkerInit, stdout: true, stderr: true });
    // Worker output must never reach the process's stdout: over --stdio that is the LSP stream.
    w.stdout.on('data', (d: Buffer) => this.log(`[${this.name}] ${d.toString().trimEnd()}`));
    w.stderr.on('data', (d: Buffer) => this.log(`[${this.name}] ${d.toString().trimEnd()}`));
    w.on('message', (msg: WorkerReply) => this.onReply(w, msg));
    w.on('error', (e) => this.onDeath(w, `the ${this.name} worker failed: ${e.message}`));
    w.on('exit', (code) => this.onDeath(w, `the ${this.name} worker stopped (exit code ${code}; out of memory?)`));
    return w;
  }

  private pump(): void {
    if (this.running || this.disposed) return;
    const next = this.queue.shift();
    if (!next) return;
    this.running = next;
    this.worker ??= this.spawn();
    Atomics.store(this.cell, 0, 0);
    this.worker.postMessage({ id: next.id, job: next.job } satisfies WorkerRequest);
  }

  private onReply(w: Worker, msg: WorkerReply): void {
    const r = this.running;
    if (w !== this.worker || !r || r.id !== msg.id) return;
    if (msg.kind === 'progress') {
      r.opts.onProgress?.(msg.progress);
      return;
    }
    this.running = undefined;
    if (msg.kind === 'done') r.resolve(msg.result);
    else r.reject(new JobError(msg.failure));
    this.pump();
  }

  private onDeath(w: Worker, message: string): void {
    if (w !== this.worker) return;
    this.worker = undefined;
    this.log(message);
    const r = this.running;
    this.running = undefined;
    r?.reject(new JobError({ kind: 'crashed', message }));
    this.pump();
  }
}
