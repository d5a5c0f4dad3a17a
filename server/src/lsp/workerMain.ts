// The worker thread's message loop: one job at a time, replies and progress posted back;
// cancellation is a shared cell the solver polls (a busy thread reads no messages).
import { parentPort, workerData } from 'node:worker_threads';
import { FileError } from '../errors/fileError';
import { transferables, type JobFailure } from '../app/analysis';
import { analyzeFile } from '../app/analyse';
import { Workbench } from '../app/balance';
import type { NetworkOpener } from '../app/openNetwork';
import type { JobHooks } from '../app/requests';
import type { WorkerInit, WorkerReply, WorkerRequest } from './workerProtocol';

/** A job's error as the main thread reports it: file errors keep their path and problem apart. */
export function failureOf(e: unknown): JobFailure {
  if (e instanceof FileError) {
    const kind = e.kind === 'unknown-format' || e.kind === 'changed' ? e.kind : 'unreadable';
    return { kind, message: e.message, path: e.path, problem: e.problem };
  }
  return { kind: 'unreadable', message: e instanceof Error ? e.message : String(e) };
}

/** A network kept for a fix is dropped after this long without jobs: a large model holds hundreds of MB. */
const KEEP_IDLE_MS = 120_000;

export function runWorker(open: NetworkOpener): void {
  const port = parentPort;
  if (!port) throw new Error('the analysis worker must run in a worker thread');
  const cell = new Int32Array((workerData as WorkerInit).cancel);
  const bench = new Workbench(open);
  const reply = (msg: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
  let idle: NodeJS.Timeout | undefined;
  // The main thread sends one job at a time, so an awaited job (an ONNX check) blocks no other.
  port.on('message', async ({ id, job }: WorkerRequest) => {
    if (idle) clearTimeout(idle);
    idle = setTimeout(() => bench.forget(), KEEP_IDLE_MS);
    idle.unref();
    const hooks: JobHooks = {
      cancelled: () => Atomics.load(cell, 0) === id,
      progress: (progress) => reply({ id, kind: 'progress', progress }),
    };
    try {
      switch (job.type) {
        case 'analyze': {
          const a = analyzeFile(job.path, job.options, open);
          reply({ id, kind: 'done', result: a }, transferables(a));
          break;
        }
        case 'predict': {
          const p = bench.predict(job, hooks);
          reply(p ? { id, kind: 'done', result: p } : { id, kind: 'failed', failure: { kind: 'cancelled', message: 'cancelled' } });
          break;
        }
        case 'balance': {
          const o = await bench.balance(job, hooks);
          reply({ id, kind: 'done', result: o }, o.analysis ? transferables(o.analysis) : []);
          break;
        }
      }
    } catch (e) {
      reply({ id, kind: 'failed', failure: failureOf(e) });
    }
  });
}
