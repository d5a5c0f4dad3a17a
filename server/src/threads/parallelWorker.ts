// A compute worker: runs the fused cost kernel on a band of rows of a shared matrix and
// reports through a shared counter, so the main thread can wait synchronously.
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { fused } from '../engine/costStorage';
import { scaleRows } from '../engine/scaleRows';
import type { BandJob, ReadJob, ScaleJob } from './parallel';

function scale(job: ScaleJob): void {
  const src = job.float32 ? new Float32Array(job.src) : new Float64Array(job.src);
  const dst = job.float32 ? new Float32Array(job.dst) : new Float64Array(job.dst);
  scaleRows(src, dst, job.base, job.sa, job.nC, job.r0, job.r1, new Float64Array(job.ft), new Float64Array(job.fs));
}

function read(job: ReadJob): void {
  const view = new Uint8Array(job.target, job.targetOffset, job.length);
  const fd = openSync(job.path, 'r');
  try {
    let done = 0;
    while (done < job.length) {
      const n = readSync(fd, view, done, job.length - done, job.fileOffset + done);
      if (n === 0) throw new Error(`${job.path}: unexpected end of file`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

parentPort!.on('message', (job: BandJob | ReadJob | ScaleJob) => {
  const ctrl = new Int32Array(job.ctrl);
  try {
    if ('path' in job) read(job);
    else if ('dst' in job) scale(job);
    else band(job);
  } catch (e) {
    Atomics.store(ctrl, 1, 1);
    parentPort!.postMessage(String(e));
  }
  Atomics.sub(ctrl, 0, 1);
  Atomics.notify(ctrl, 0);
});

function band(job: BandJob): void {
  {
    const data = job.float32 ? new Float32Array(job.data) : new Float64Array(job.data);
    const x = new Float64Array(job.x);
    const y = new Float64Array(job.y);
    const row = new Float64Array(job.row);
    const col = new Float64Array(job.col, job.colOffset * 8, job.nC);
    fused(data, job.base + job.r0 * job.nC, job.r1 - job.r0, job.nC, job.kind, x, y.subarray(job.r0, job.r1), row.subarray(job.r0, job.r1), col);
  }
}
